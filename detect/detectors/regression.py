"""Localization as regression: the whole image is the one region.

The first rung (OverFeat-style "classify and localize", before region
proposals): the backbone runs once on the image, its last map is
average-pooled to one vector, and an MLP outputs class scores and ONE box.
It is trained on one target object per image (the largest, by default) with
cross-entropy + smooth-L1, and at test time emits one box per image (or the
same box for each of its top-k classes). On images with several objects it
must miss all but one: that failure is the lesson of this rung.

    features (N, K, h, w) -> avg-pool (N, K) -> MLP (N, M)
        -> cls_score (N, C+1), bbox_pred (N, 4) or (N, (C+1)*4)

The box is coded with the same ``BoxCoder`` as every other rung, relative to
the whole-image box (the "proposal" this rung's source returns), with unit
weights: deltas are then centre offsets in image widths and log size ratios.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.detection._utils import BoxCoder
from torchvision.models.detection.roi_heads import fastrcnn_loss
from torchvision.ops import boxes as box_ops

from detect.detectors.crop_head import backbone_map


class WholeImageSource(nn.Module):
    """Proposal source returning one box per image: the image itself, ``[0, 0, w, h]``."""

    def forward(self, images, features=None, targets=None, proposals=None):
        boxes = [torch.tensor([[0.0, 0.0, float(w), float(h)]], device=images.tensors.device)
                 for h, w in images.image_sizes]
        return boxes, {}


def pick_target(boxes: Tensor, labels: Tensor, rule: str = "largest") -> tuple[Tensor, Tensor]:
    """The one object an image is trained on: (4,) box and () label; label 0 if there is none.

    ``largest``: the object of largest area (ties: the first); ``first``: the first listed.
    """
    if boxes.shape[0] == 0:
        return boxes.new_zeros(4), torch.zeros((), dtype=torch.int64, device=boxes.device)
    if rule == "largest":
        i = int(torch.argmax(box_ops.box_area(boxes)))
    elif rule == "first":
        i = 0
    else:
        raise ValueError(f"unknown target rule {rule!r} (largest, first)")
    return boxes[i], labels[i].to(torch.int64)


class GlobalPoolHead(nn.Module):
    """Region head of the regression rung (the region-head API of docs/architecture.md).

    Args:
        in_channels: K, channels of the backbone's last map.
        num_classes: C object classes (C + 1 scores, 0 = background: an image without objects).
        class_agnostic: one box for all classes (True) or one per class.
        target: which object trains the box ("largest" or "first").
        topk: detections per image at test time (its top-k classes, all with the one box).
        score_thresh: detections scoring at most this are dropped (``test.score_thresh``).
    """

    def __init__(self, in_channels: int, num_classes: int, *, representation_size: int = 128,
                 pool_size: int = 1, class_agnostic: bool = False, target: str = "largest", topk: int = 1,
                 score_thresh: float = 0.05):
        super().__init__()
        self.pool_size = pool_size
        flat = in_channels * pool_size * pool_size
        self.mlp = nn.Sequential(nn.Linear(flat, representation_size), nn.ReLU(inplace=True),
                                 nn.Linear(representation_size, representation_size), nn.ReLU(inplace=True))
        self.cls_score = nn.Linear(representation_size, num_classes + 1)
        self.bbox_pred = nn.Linear(representation_size, 4 if class_agnostic else (num_classes + 1) * 4)
        self.box_coder = BoxCoder((1.0, 1.0, 1.0, 1.0))
        self.class_agnostic = class_agnostic
        self.target = target
        self.topk = topk
        self.score_thresh = score_thresh

    def forward(self, features, proposals: list[Tensor], image_sizes, targets=None, images=None,
                score_thresh: float | None = None):
        fmap = backbone_map(features)  # (N, K, h, w)
        pooled = F.adaptive_avg_pool2d(fmap, self.pool_size).flatten(1)  # (N, K * p * p)
        hidden = self.mlp(pooled)
        logits, deltas = self.cls_score(hidden), self.bbox_pred(hidden)  # (N, C+1), (N, 4 or (C+1)*4)
        deltas = deltas.reshape(deltas.shape[0], -1, 4)  # (N, 1 or C+1, 4)
        whole = torch.cat(proposals)  # (N, 4): one whole-image box per image
        if self.training:
            return [], self._loss(logits, deltas, whole, targets)
        thresh = self.score_thresh if score_thresh is None else score_thresh
        return self._detect(logits, deltas, whole, image_sizes, thresh), {}

    def _loss(self, logits: Tensor, deltas: Tensor, whole: Tensor, targets) -> dict[str, Tensor]:
        """torchvision's Fast R-CNN loss with the image as the one region and its target object as the gt."""
        picked = [pick_target(t["boxes"], t["labels"], self.target) for t in targets]
        boxes = torch.stack([b for b, _ in picked]).to(whole.dtype)  # (N, 4)
        labels = torch.stack([lab for _, lab in picked])  # (N,)
        pos = torch.where(labels > 0)[0]
        goal = whole.new_zeros(whole.shape)  # (N, 4); rows without an object carry no box loss
        goal[pos] = self.box_coder.encode_single(boxes[pos], whole[pos])
        # class-agnostic: the one box stands in every class's slot, so the loss reads it whatever the label
        per_class = deltas.expand(-1, logits.shape[1], 4) if self.class_agnostic else deltas  # (N, C+1, 4)
        loss_cls, loss_box = fastrcnn_loss(logits, per_class.reshape(len(logits), -1), [labels], [goal])
        return {"loss_classifier": loss_cls, "loss_box_reg": loss_box}

    def _detect(self, logits: Tensor, deltas: Tensor, whole: Tensor, image_sizes,
                score_thresh: float) -> list[dict[str, Tensor]]:
        probs = F.softmax(logits, -1)[:, 1:]  # (N, C): background dropped
        k = min(self.topk, probs.shape[1])
        scores, classes = probs.topk(k, dim=1)  # (N, k)
        results = []
        for i, shape in enumerate(image_sizes):
            rows = torch.zeros(k, dtype=torch.int64) if self.class_agnostic else classes[i] + 1
            boxes = self.box_coder.decode_single(deltas[i, rows], whole[i:i + 1].expand(k, 4))
            boxes = box_ops.clip_boxes_to_image(boxes, shape)  # (k, 4)
            keep = scores[i] > score_thresh
            results.append({"boxes": boxes[keep], "scores": scores[i][keep], "labels": classes[i][keep] + 1})
        return results
