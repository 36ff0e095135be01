"""The region classifier of Fast and Faster R-CNN: torchvision's RoIHeads, thinly adapted.

``RegionHeads`` subclasses ``torchvision.models.detection.roi_heads.RoIHeads``
(so its state-dict keys ``box_head.fc6...``, ``box_predictor.cls_score...`` load
from torchvision checkpoints) and only adds the region-head signature shared by
every rung:

    forward(features: dict[name, (B, C, h, w)], proposals: list[(P_i, 4)],
            image_sizes: list[(h, w)], targets: list[dict] | None, images: ImageList | None,
            score_thresh: float | None)
        -> (list[dict(boxes (D, 4), scores (D,), labels (D,) in 1..C)], dict of losses)

Training is torchvision's (sampling, ``fastrcnn_loss``) plus the Fast R-CNN paper's
background floor (``detect.detectors.rcnn.ignore_low_background``, shared with the
crop head's sampler). Detection uses the post-processing every softmax head shares
(``detect.detectors.rcnn.postprocess_detections``), so a score threshold can be
given per call. Boxes are in resized-image pixels; the detector maps them back.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.roi_heads import RoIHeads
from torchvision.ops import box_iou

from detect.detectors.rcnn import ignore_low_background, postprocess_detections
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
                    ignore_low_background(lab, box_iou(gt, boxes).max(dim=0).values, self.bg_iou_thresh_lo)
        return matched_idxs, labels

    def forward(  # type: ignore[override]
        self,
        features: dict[str, Tensor],
        proposals: list[Tensor],
        image_sizes: list[tuple[int, int]],
        targets: list[dict[str, Tensor]] | None = None,
        images: ImageList | None = None,
        score_thresh: float | None = None,
    ) -> tuple[list[dict[str, Tensor]], dict[str, Tensor]]:
        if self.training:
            return super().forward(features, proposals, image_sizes, targets)
        pooled = self.box_roi_pool(features, proposals, image_sizes)  # (R, C, s, s)
        class_logits, box_regression = self.box_predictor(self.box_head(pooled))  # (R, K+1), (R, (K+1)*4)
        thresh = self.score_thresh if score_thresh is None else score_thresh
        return postprocess_detections(F.softmax(class_logits, -1), box_regression, proposals, image_sizes,
                                      self.box_coder, thresh, self.nms_thresh, self.detections_per_img), {}


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
