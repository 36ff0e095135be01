"""Localization as regression: the whole image is the one region.

The first rung (AlexNet/OverFeat-style "classify and localize", before region
proposals): the backbone runs once on the image; a classification network's
last layers are swapped for a head that sees the *spatial* map (an optional
strided 3x3 conv, then average pooling to a small ``pool_size`` x
``pool_size`` grid, whose cells are flattened into two fully connected
layers), which outputs class scores and ONE box. It is trained on one target
object per image (the largest, by default) with cross-entropy plus a box loss
(``l2``, ``smooth_l1`` or ``bins``: detect/detectors/regression_losses.py),
and at test time emits one box per image (or the same box for each of its
top-k classes). On images with several objects it must miss all but one:
that is the lesson of this rung, and the only reason it should fail.

    features (N, K, h, w) -> [conv 3x3 stride 2, ReLU] -> avg-pool (N, K', p, p) -> flatten
        -> FC, ReLU, FC, ReLU (N, M) -> cls_score (N, C+1), bbox_pred (N, B * 4 [* bins]), B = 1 or C+1

``l2`` and ``smooth_l1`` regress the ``BoxCoder`` deltas (unit weights) of the
box relative to the whole-image box, the "proposal" this rung's source returns;
``bins`` classifies each edge over bins across the image. ``pool_size: 1`` with
no conv is global average pooling (the head before issue 13, and the default,
so that model.pt files written before it load unchanged): it throws away where
the object is. The rung's training images can be object-centric crops
(``train_crops``, detect/data/object_crops.py), made by the data loader.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.detection._utils import BoxCoder
from torchvision.ops import boxes as box_ops

from detect.detectors.crop_head import backbone_map
from detect.detectors.regression_losses import BOX_LOSSES, bins_loss, decode_bins, l2_loss, smooth_l1_loss


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


def edges_in_image(boxes: Tensor, whole: Tensor) -> Tensor:
    """(N, 4) boxes -> their edges as fractions of their (N, 4) whole-image boxes' width and height."""
    size = (whole[:, 2:] - whole[:, :2]).repeat(1, 2)
    return (boxes - whole[:, :2].repeat(1, 2)) / size


def boxes_from_edges(edges: Tensor, whole: Tensor) -> Tensor:
    """Inverse of :func:`edges_in_image` for (k, 4) edges of one (1, 4) whole box; x1 <= x2, y1 <= y2."""
    size = (whole[:, 2:] - whole[:, :2]).repeat(1, 2)
    boxes = edges * size + whole[:, :2].repeat(1, 2)
    lo, hi = torch.minimum(boxes[:, :2], boxes[:, 2:]), torch.maximum(boxes[:, :2], boxes[:, 2:])
    return torch.cat([lo, hi], 1)


class GlobalPoolHead(nn.Module):
    """Region head of the regression rung (the region-head API of docs/architecture.md).

    Args:
        in_channels: K, channels of the backbone's last map.
        num_classes: C object classes (C + 1 scores, 0 = background: an image without objects).
        representation_size: M, width of the two fully connected layers.
        pool_size: p, the map is average-pooled to p x p cells, flattened (1: global average pooling).
        conv_channels: K' of a 3x3 stride-2 conv + ReLU before pooling; 0 = none (K' = K).
        box_loss: ``l2``, ``smooth_l1`` (on deltas) or ``bins`` (edges over ``bins`` bins).
        bins: K bins per edge for ``box_loss: bins``.
        box_loss_weight: the box loss's weight against the classifier's cross-entropy.
        class_agnostic: one box for all classes (True) or one per class.
        target: which object trains the box ("largest" or "first").
        topk: detections per image at test time (its top-k classes, all with the one box).
        score_thresh: detections scoring at most this are dropped (``test.score_thresh``).
    """

    def __init__(self, in_channels: int, num_classes: int, *, representation_size: int = 128,
                 pool_size: int = 1, conv_channels: int = 0, box_loss: str = "smooth_l1", bins: int = 32,
                 box_loss_weight: float = 1.0, class_pool: str = "shared", class_agnostic: bool = False,
                 target: str = "largest", topk: int = 1, score_thresh: float = 0.05):
        super().__init__()
        if box_loss not in BOX_LOSSES:
            raise ValueError(f"unknown box loss {box_loss!r} ({', '.join(BOX_LOSSES)})")
        self.pool_size = pool_size
        self.conv = None
        if conv_channels:
            self.conv = nn.Sequential(nn.Conv2d(in_channels, conv_channels, 3, stride=2, padding=1),
                                      nn.ReLU(inplace=True))
        flat = (conv_channels or in_channels) * pool_size * pool_size
        self.mlp = nn.Sequential(nn.Linear(flat, representation_size), nn.ReLU(inplace=True),
                                 nn.Linear(representation_size, representation_size), nn.ReLU(inplace=True))
        if class_pool not in ("shared", "avg", "max"):
            raise ValueError(f"unknown class_pool {class_pool!r} (shared, avg, max)")
        self.class_pool = class_pool
        self.classifier = None  # shared: the class scores read the box branch's layers
        if class_pool != "shared":  # a classification network's own head: the whole map pooled, position-blind
            self.classifier = nn.Sequential(nn.Linear(in_channels, representation_size), nn.ReLU(inplace=True))
        self.cls_score = nn.Linear(representation_size, num_classes + 1)
        self.box_loss, self.bins, self.box_loss_weight = box_loss, bins, box_loss_weight
        per_box = 4 * (bins if box_loss == "bins" else 1)
        self.bbox_pred = nn.Linear(representation_size, per_box * (1 if class_agnostic else num_classes + 1))
        self.box_coder = BoxCoder((1.0, 1.0, 1.0, 1.0))
        self.class_agnostic = class_agnostic
        self.target = target
        self.topk = topk
        self.score_thresh = score_thresh

    def forward(self, features, proposals: list[Tensor], image_sizes, targets=None, images=None,
                score_thresh: float | None = None):
        fmap = backbone_map(features)  # (N, K, h, w)
        cells = self.conv(fmap) if self.conv is not None else fmap  # (N, K', h/2, w/2) or (N, K, h, w)
        pooled = F.adaptive_avg_pool2d(cells, self.pool_size).flatten(1)  # (N, K' * p * p): the cells, in order
        hidden = self.mlp(pooled)
        if self.classifier is None:
            logits = self.cls_score(hidden)  # (N, C+1)
        else:
            pool = F.adaptive_max_pool2d if self.class_pool == "max" else F.adaptive_avg_pool2d
            logits = self.cls_score(self.classifier(pool(fmap, 1).flatten(1)))
        raw = self.bbox_pred(hidden)  # (N, B * 4 [* bins])
        per_box = (4, self.bins) if self.box_loss == "bins" else (4,)
        boxes = raw.reshape(raw.shape[0], -1, *per_box)  # (N, B, 4) deltas or (N, B, 4, bins) edge logits
        whole = torch.cat(proposals)  # (N, 4): one whole-image box per image
        if self.training:
            return [], self._loss(logits, boxes, whole, targets)
        thresh = self.score_thresh if score_thresh is None else score_thresh
        return self._detect(logits, boxes, whole, image_sizes, thresh), {}

    def _loss(self, logits: Tensor, boxes: Tensor, whole: Tensor, targets) -> dict[str, Tensor]:
        """Cross-entropy on the target object's class + the box loss on its box (the image as the one region)."""
        picked = [pick_target(t["boxes"], t["labels"], self.target) for t in targets]
        gt = torch.stack([b for b, _ in picked]).to(whole.dtype)  # (N, 4)
        labels = torch.stack([lab for _, lab in picked])  # (N,)
        pos = torch.where(labels > 0)[0]
        n = len(labels)
        rows = torch.zeros_like(pos) if self.class_agnostic else labels[pos]  # the true class's box
        pred = boxes[pos, rows]  # (P, 4) or (P, 4, bins)
        if self.box_loss == "bins":
            loss_box = bins_loss(pred, edges_in_image(gt[pos], whole[pos]), n)
        else:  # smooth_l1 on deltas with the image as the one region is torchvision's fastrcnn_loss box term
            goal = self.box_coder.encode_single(gt[pos], whole[pos])  # (P, 4)
            loss_box = (l2_loss if self.box_loss == "l2" else smooth_l1_loss)(pred, goal, n)
        loss_cls = F.cross_entropy(logits, labels)
        return {"loss_classifier": loss_cls, "loss_box_reg": self.box_loss_weight * loss_box}

    def _detect(self, logits: Tensor, boxes: Tensor, whole: Tensor, image_sizes,
                score_thresh: float) -> list[dict[str, Tensor]]:
        probs = F.softmax(logits, -1)[:, 1:]  # (N, C): background dropped
        k = min(self.topk, probs.shape[1])
        scores, classes = probs.topk(k, dim=1)  # (N, k)
        results = []
        for i, shape in enumerate(image_sizes):
            rows = torch.zeros(k, dtype=torch.int64) if self.class_agnostic else classes[i] + 1
            if self.box_loss == "bins":
                found = boxes_from_edges(decode_bins(boxes[i, rows]), whole[i:i + 1])
            else:
                found = self.box_coder.decode_single(boxes[i, rows], whole[i:i + 1].expand(k, 4))
            found = box_ops.clip_boxes_to_image(found, shape)  # (k, 4)
            keep = scores[i] > score_thresh
            results.append({"boxes": found[keep], "scores": scores[i][keep], "labels": classes[i][keep] + 1})
        return results
