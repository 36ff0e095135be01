"""Region sampling rules and the one post-processing of every softmax region head (crop and RoI heads).

Sampler (R-CNN paper, section 2.3 "Domain-specific fine-tuning"): every region
proposal with IoU >= 0.5 to a ground-truth box of its image is a positive for
that box's class, the rest are background; each SGD mini-batch takes 32
positives (over all classes) and 96 backgrounds, i.e. 128 regions drawn
uniformly over *all images of the batch* (not per image, unlike Fast R-CNN).
The ground-truth boxes themselves join the proposals, as in the R-CNN code.
Both samplers (this one and the RoI head's) leave out background below
``bg_iou_lo`` with :func:`ignore_low_background`.

Shapes: proposals / gt boxes per image (P_i, 4) / (G_i, 4) float, gt labels
(G_i,) int64 in 1..C (0 = background inside models).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torchvision.models.detection._utils import BoxCoder
from torchvision.ops import boxes as box_ops


@dataclass
class SampledRegions:
    """What one training step classifies: per image, the chosen boxes and their targets."""

    boxes: list[Tensor]  # per image (S_i, 4) float, image coordinates
    labels: list[Tensor]  # per image (S_i,) int64, 0 = background
    regression_targets: list[Tensor]  # per image (S_i, 4) float, BoxCoder deltas to the matched gt


class RCNNSampler:
    """Draw ``batch_size`` regions over a whole batch, ``positive_fraction`` of them positive.

    Positives: IoU >= ``fg_iou_thresh``; backgrounds: ``bg_iou_lo`` <= IoU < ``bg_iou_hi``
    (R-CNN: 0.5, [0, 0.5); the paper's 32 + 96 of 128). Fewer positives than the quota are
    topped up with backgrounds, as in the paper's code.
    """

    def __init__(self, batch_size: int = 128, positive_fraction: float = 0.25,
                 fg_iou_thresh: float = 0.5, bg_iou_hi: float = 0.5, bg_iou_lo: float = 0.0,
                 add_gt: bool = True):
        self.batch_size = batch_size
        self.positive_fraction = positive_fraction
        self.fg_iou_thresh = fg_iou_thresh
        self.bg_iou_hi = bg_iou_hi
        self.bg_iou_lo = bg_iou_lo
        self.add_gt = add_gt

    def __call__(self, proposals: list[Tensor], targets: list[dict[str, Tensor]], box_coder: BoxCoder) -> SampledRegions:
        """Sample one batch's regions; regression targets are ``box_coder`` deltas to the matched gt."""
        boxes, labels, matched = [], [], []
        for props, tgt in zip(proposals, targets):
            b, lab, m = self._label_image(props, tgt["boxes"], tgt["labels"])
            boxes.append(b)
            labels.append(lab)
            matched.append(m)
        image_of = torch.cat([torch.full((len(b),), i, dtype=torch.int64) for i, b in enumerate(boxes)])
        all_labels = torch.cat(labels)
        pos = torch.where(all_labels > 0)[0]
        neg = torch.where(all_labels == 0)[0]  # ignored regions (IoU below bg_iou_lo) are -1
        n_pos = min(int(self.batch_size * self.positive_fraction), pos.numel())
        n_neg = min(self.batch_size - n_pos, neg.numel())
        chosen = torch.cat([pos[torch.randperm(pos.numel())[:n_pos]], neg[torch.randperm(neg.numel())[:n_neg]]])
        out = SampledRegions([], [], [])
        offsets = [0]
        for b in boxes:
            offsets.append(offsets[-1] + len(b))
        for i in range(len(boxes)):
            local = chosen[image_of[chosen.cpu()] == i] - offsets[i]
            out.boxes.append(boxes[i][local])
            out.labels.append(labels[i][local])
            out.regression_targets.append(box_coder.encode_single(matched[i][local], boxes[i][local]))
        return out

    def _label_image(self, props: Tensor, gt_boxes: Tensor, gt_labels: Tensor):
        """Label one image's proposals: (P, 4) boxes, (P,) labels (-1 ignored), (P, 4) matched gt."""
        if self.add_gt:
            props = torch.cat([props, gt_boxes.to(props.dtype)])
        if gt_boxes.numel() == 0:
            return props, torch.zeros(len(props), dtype=torch.int64, device=props.device), torch.zeros_like(props)
        iou = box_ops.box_iou(gt_boxes.to(props.dtype), props)  # (G, P)
        best, idx = iou.max(dim=0)  # (P,)
        labels = gt_labels[idx].clone().to(torch.int64)
        labels[best < self.fg_iou_thresh] = 0
        labels[(best >= self.bg_iou_hi) & (best < self.fg_iou_thresh)] = -1
        ignore_low_background(labels, best, self.bg_iou_lo)
        return props, labels, gt_boxes[idx].to(props.dtype)


def ignore_low_background(labels: Tensor, best_iou: Tensor, bg_iou_lo: float) -> Tensor:
    """Mark background regions (label 0) whose best IoU with any object is below ``bg_iou_lo`` as ignored (-1).

    The Fast R-CNN paper samples background from [0.1, 0.5) so that the easy, far-away regions do not
    crowd out the informative ones; lo = 0 keeps all background. ``labels`` (P,) is changed in place.
    """
    if bg_iou_lo > 0:
        labels[(best_iou < bg_iou_lo) & (labels == 0)] = -1
    return labels


def postprocess_detections(class_scores: Tensor, box_regression: Tensor, proposals: list[Tensor],
                           image_shapes: list[tuple[int, int]], box_coder: BoxCoder, score_thresh: float,
                           nms_thresh: float, detections_per_img: int) -> list[dict[str, Tensor]]:
    """Per image: decode class-specific boxes, drop background and low scores, per-class NMS, top-k.

    class_scores (R, C+1) probabilities (softmax, or SVM scores for ``head: svm``),
    box_regression (R, (C+1)*4), proposals N x (P_i, 4) with sum P_i = R.
    Returns N dicts of boxes (D, 4), scores (D,), labels (D,) int64 in 1..C.
    """
    num_classes = class_scores.shape[1]
    counts = [len(p) for p in proposals]
    if sum(counts) == 0:
        pred = class_scores.new_zeros((0, num_classes, 4))
    else:
        pred = box_coder.decode(box_regression, proposals)  # (R, C+1, 4)
    results = []
    for boxes, scores, shape in zip(pred.split(counts), class_scores.split(counts), image_shapes):
        boxes = box_ops.clip_boxes_to_image(boxes, shape)[:, 1:].reshape(-1, 4)  # (P*C, 4), no background
        labels = torch.arange(1, num_classes, device=scores.device).repeat(scores.shape[0])
        scores = scores[:, 1:].reshape(-1)
        keep = torch.where(scores > score_thresh)[0]
        boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
        keep = box_ops.remove_small_boxes(boxes, min_size=1e-2)
        boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
        keep = box_ops.batched_nms(boxes, scores, labels, nms_thresh)[:detections_per_img]
        results.append({"boxes": boxes[keep], "scores": scores[keep], "labels": labels[keep]})
    return results
