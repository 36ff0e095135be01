"""The region classifier of Fast and Faster R-CNN: torchvision's RoIHeads, thinly adapted.

``RegionHeads`` subclasses ``torchvision.models.detection.roi_heads.RoIHeads``
(so its state-dict keys ``box_head.fc6...``, ``box_predictor.cls_score...`` load
from torchvision checkpoints) and only adds the region-head signature shared by
every rung:

    forward(features: dict[name, (B, C, h, w)], proposals: list[(P_i, 4)],
            image_sizes: list[(h, w)], targets: list[dict] | None, images: ImageList | None)
        -> (list[dict(boxes (D, 4), scores (D,), labels (D,) in 1..C)], dict of losses)

Boxes are in resized-image pixels; the detector maps them back to the original image.
"""

from __future__ import annotations

from torch import Tensor
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.roi_heads import RoIHeads
from torchvision.ops import box_iou

from detect.ops.roi_align import build_roi_pooler


class RegionHeads(RoIHeads):
    """RoI pooling on shared features -> two-layer MLP -> class scores and per-class box deltas.

    ``bg_iou_thresh_lo`` (default 0: torchvision's rule) ignores proposals whose best
    IoU with any object is below it, so background samples come from [lo, 0.5) as in
    the Fast R-CNN paper (lo = 0.1).
    """

    bg_iou_thresh_lo: float = 0.0

    def assign_targets_to_proposals(self, proposals, gt_boxes, gt_labels):
        matched_idxs, labels = super().assign_targets_to_proposals(proposals, gt_boxes, gt_labels)
        if self.bg_iou_thresh_lo > 0:
            for boxes, gt, lab in zip(proposals, gt_boxes, labels):
                if gt.numel():
                    best = box_iou(gt, boxes).max(dim=0).values  # (P,)
                    lab[(best < self.bg_iou_thresh_lo) & (lab == 0)] = -1  # -1: neither fg nor bg sample
        return matched_idxs, labels

    def forward(  # type: ignore[override]
        self,
        features: dict[str, Tensor],
        proposals: list[Tensor],
        image_sizes: list[tuple[int, int]],
        targets: list[dict[str, Tensor]] | None = None,
        images: ImageList | None = None,
    ) -> tuple[list[dict[str, Tensor]], dict[str, Tensor]]:
        return super().forward(features, proposals, image_sizes, targets)


def build_region_heads(
    in_channels: int,
    num_classes: int,
    *,
    featmap_names: list[str],
    roi_op: str = "roi_align",
    output_size: int = 7,
    sampling_ratio: int = 2,
    representation_size: int = 1024,
    fg_iou_thresh: float = 0.5,
    bg_iou_thresh_hi: float = 0.5,
    bg_iou_thresh_lo: float = 0.0,
    batch_size_per_image: int = 512,
    positive_fraction: float = 0.25,
    bbox_reg_weights: tuple[float, float, float, float] | None = None,
    score_thresh: float = 0.05,
    nms_thresh: float = 0.5,
    detections_per_image: int = 100,
) -> RegionHeads:
    """Fast R-CNN's head for ``num_classes`` object classes (+1 background output). Defaults are torchvision's."""
    pooler = build_roi_pooler(roi_op, featmap_names, output_size, sampling_ratio)
    heads = RegionHeads(
        pooler,
        TwoMLPHead(in_channels * output_size**2, representation_size),
        FastRCNNPredictor(representation_size, num_classes + 1),
        fg_iou_thresh,
        bg_iou_thresh_hi,
        batch_size_per_image,
        positive_fraction,
        tuple(bbox_reg_weights) if bbox_reg_weights is not None else None,
        score_thresh,
        nms_thresh,
        detections_per_image,
    )
    # torchvision has one background threshold; the Fast R-CNN paper samples background in [0.1, 0.5).
    heads.bg_iou_thresh_lo = bg_iou_thresh_lo
    return heads
