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
    """Region head of the regression rung (FRAMEWORK.md region-head API).

    Args:
        in_channels: K, channels of the backbone's last map.
        num_classes: C object classes (C + 1 scores, 0 = background: an image without objects).
        class_agnostic: one box for all classes (True) or one per class.
        target: which object trains the box ("largest" or "first").
        topk: detections per image at test time (its top-k classes, all with the one box).
    """

    def __init__(self, in_channels: int, num_classes: int, *, representation_size: int = 128,
                 pool_size: int = 1, class_agnostic: bool = False, target: str = "largest", topk: int = 1,
                 score_thresh: float = 0.0):
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

    def forward(self, features, proposals: list[Tensor], image_sizes, targets=None, images=None):
        fmap = backbone_map(features)  # (N, K, h, w)
        pooled = F.adaptive_avg_pool2d(fmap, self.pool_size).flatten(1)  # (N, K * p * p)
        hidden = self.mlp(pooled)
        logits, deltas = self.cls_score(hidden), self.bbox_pred(hidden)  # (N, C+1), (N, 4 or (C+1)*4)
        deltas = deltas.reshape(deltas.shape[0], -1, 4)  # (N, 1 or C+1, 4)
        whole = torch.cat(proposals)  # (N, 4): one whole-image box per image
        if self.training:
            return [], self._loss(logits, deltas, whole, targets)
        return self._detect(logits, deltas, whole, image_sizes), {}

    def _loss(self, logits: Tensor, deltas: Tensor, whole: Tensor, targets) -> dict[str, Tensor]:
        picked = [pick_target(t["boxes"], t["labels"], self.target) for t in targets]
        boxes = torch.stack([b for b, _ in picked]).to(whole.dtype)  # (N, 4)
        labels = torch.stack([lab for _, lab in picked])  # (N,)
        loss_cls = F.cross_entropy(logits, labels)
        pos = torch.where(labels > 0)[0]
        cls_idx = torch.zeros_like(labels[pos]) if self.class_agnostic else labels[pos]
        pred = deltas[pos, cls_idx]  # (N+, 4)
        goal = self.box_coder.encode_single(boxes[pos], whole[pos])
        loss_box = F.smooth_l1_loss(pred, goal, beta=1 / 9, reduction="sum") / max(labels.numel(), 1)
        return {"loss_classifier": loss_cls, "loss_box_reg": loss_box}

    def _detect(self, logits: Tensor, deltas: Tensor, whole: Tensor, image_sizes) -> list[dict[str, Tensor]]:
        probs = F.softmax(logits, -1)[:, 1:]  # (N, C): background dropped
        k = min(self.topk, probs.shape[1])
        scores, classes = probs.topk(k, dim=1)  # (N, k)
        results = []
        for i, shape in enumerate(image_sizes):
            rows = torch.zeros(k, dtype=torch.int64) if self.class_agnostic else classes[i] + 1
            boxes = self.box_coder.decode_single(deltas[i, rows], whole[i:i + 1].expand(k, 4))
            boxes = box_ops.clip_boxes_to_image(boxes, shape)  # (k, 4)
            keep = scores[i] > self.score_thresh
            results.append({"boxes": boxes[keep], "scores": scores[i][keep], "labels": classes[i][keep] + 1})
        return results


def build_regression(config, num_classes: int):
    """Localization as regression: backbone -> global pool -> class scores + one box."""
    from detect.backbones import backbone_from_config
    from detect.detectors.base import Detector
    from detect.detectors.faster_rcnn import transform_from_config

    reg = config.model.regression
    backbone = backbone_from_config(config.model.backbone, seed=config.seed)
    head = GlobalPoolHead(backbone.out_channels, num_classes, representation_size=reg.representation_size,
                          pool_size=reg.pool_size,
                          class_agnostic=reg.class_agnostic, target=reg.target, topk=reg.topk,
                          score_thresh=0.0)
    return Detector(transform_from_config(config), backbone, WholeImageSource(), head, rung="regression")
