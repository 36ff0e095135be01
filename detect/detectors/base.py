"""``Detector``: the one composition class every rung of the ladder is an instance of.

It reads like torchvision's ``GeneralizedRCNN.forward``::

    images (list of (3, H_i, W_i) float in [0, 1])
      -> transform   (normalise, resize, batch)        ImageList (B, 3, H', W')
      -> backbone    (shared features; skipped if None) dict name -> (B, C, h, w)
      -> proposals   (RPN, windows, precomputed, whole image) list of (P_i, 4)
      -> region head (classify and refine each region)  list of dict, losses
      -> postprocess (boxes back to original pixels)

The rungs differ only in the proposal source and region head plugged in (see
``detect/build.py`` and docs/architecture.md). When neither part reads shared
features (sliding windows, R-CNN) the detector has ``backbone=None``: the crop
head owns its backbone and runs it on warped crops of ``images.tensors``.

Part interfaces:
* proposal source: ``forward(images: ImageList, features, targets, proposals)
  -> (list[(P_i, 4)], dict losses)``; ``proposals`` are precomputed boxes already
  rescaled to the resized image (or None).
* region head: ``forward(features, proposals, image_sizes, targets, images: ImageList,
  score_thresh: float | None) -> (list[dict(boxes, scores, labels)], dict losses)``;
  ``score_thresh`` (None: the head's own) is a post-processing argument of one call.

Attribute names ``backbone`` / ``rpn`` / ``roi_heads`` are torchvision's, so a
torchvision Faster R-CNN state dict loads into our Faster R-CNN unchanged.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torchvision.models.detection.transform import GeneralizedRCNNTransform, resize_boxes

from detect.backbones import feature_dict


@dataclass
class StageTimes:
    """Seconds per image spent in each stage of one batch (wall clock, divided by batch size)."""

    proposals: float = 0.0  # proposal source (RPN, windows; precomputed: only the rescaling)
    network: float = 0.0  # transform + backbone + region head + postprocess

    @property
    def total(self) -> float:
        return self.proposals + self.network


class Detector(nn.Module):
    """transform -> backbone -> proposal source -> region head -> postprocess."""

    def __init__(
        self,
        transform: GeneralizedRCNNTransform,
        backbone: nn.Module | None,
        proposal_source: nn.Module,
        region_head: nn.Module,
        *,
        rung: str = "",
    ):
        super().__init__()
        self.transform = transform
        self.backbone = backbone
        self.rpn = proposal_source  # torchvision's name, kept for state-dict compatibility
        self.roi_heads = region_head  # ditto
        self.rung = rung

    @property
    def proposal_source(self) -> nn.Module:
        return self.rpn

    @property
    def region_head(self) -> nn.Module:
        return self.roi_heads

    def forward(
        self,
        images: list[Tensor],
        targets: list[dict[str, Tensor]] | None = None,
        proposals: list[Tensor] | None = None,
        score_thresh: float | None = None,
    ):
        """Training: dict of scalar losses. Eval: per image dict(boxes (D,4), scores (D,), labels (D,) 1..C).

        ``targets``: per image ``boxes`` (N, 4) float and ``labels`` (N,) int64 in 1..C,
        original image pixels. ``proposals``: per image (P, 4) float, original pixels.
        ``score_thresh``: eval only, keep detections scoring above it (None: the configured one).
        """
        detections, losses = self._run(images, targets, proposals, None, score_thresh)
        return losses if self.training else detections

    @torch.no_grad()
    def detect_with_timing(self, images: list[Tensor], proposals: list[Tensor] | None = None,
                           score_thresh: float | None = None) -> tuple[list[dict], StageTimes]:
        """Eval-mode detections plus the per-image seconds spent proposing vs in the network."""
        clock: dict[str, float] = {}
        start = time.perf_counter()
        detections, _ = self._run(images, None, proposals, clock, score_thresh)
        total = time.perf_counter() - start
        n = max(len(images), 1)
        return detections, StageTimes(proposals=clock["proposals"] / n, network=(total - clock["proposals"]) / n)

    @torch.no_grad()
    def propose(self, images: list[Tensor], proposals: list[Tensor] | None = None) -> list[Tensor]:
        """The boxes the region head would see, per image (P_i, 4) in original pixels, ranked as the source ranks.

        Runs transform -> backbone (when the source reads features) -> proposal source only; for the
        report's proposal recall of an RPN, windows or precomputed boxes after the source's own top-n.
        """
        original_sizes = [(int(img.shape[-2]), int(img.shape[-1])) for img in images]
        image_list, _ = self.transform(images, None)
        features = feature_dict(self.backbone(image_list.tensors)) if self.backbone is not None else {}
        if proposals is not None:
            proposals = [resize_boxes(p.to(image_list.tensors.dtype), orig, new)
                         for p, orig, new in zip(proposals, original_sizes, image_list.image_sizes)]
        boxes, _ = self.rpn(image_list, features, None, proposals)
        return [resize_boxes(b, new, orig) for b, new, orig in zip(boxes, image_list.image_sizes, original_sizes)]

    def _run(self, images, targets, proposals, clock: dict | None, score_thresh: float | None = None):
        original_sizes = [(int(img.shape[-2]), int(img.shape[-1])) for img in images]
        image_list, targets = self.transform(images, targets)
        features = feature_dict(self.backbone(image_list.tensors)) if self.backbone is not None else {}
        tick = time.perf_counter()
        if proposals is not None:  # precomputed boxes follow the resize: original -> resized pixels
            proposals = [
                resize_boxes(p.to(image_list.tensors.dtype), orig, new)
                for p, orig, new in zip(proposals, original_sizes, image_list.image_sizes)
            ]
        boxes, proposal_losses = self.rpn(image_list, features, targets, proposals)
        if clock is not None:
            clock["proposals"] = time.perf_counter() - tick
        detections, head_losses = self.roi_heads(features, boxes, image_list.image_sizes, targets, image_list,
                                                 score_thresh=score_thresh)
        detections = self.transform.postprocess(detections, image_list.image_sizes, original_sizes)
        return detections, {**proposal_losses, **head_losses}


def build_transform(min_size: int, max_size: int, image_mean=None, image_std=None, **kwargs) -> GeneralizedRCNNTransform:
    """torchvision's resize-and-normalise transform (ImageNet mean/std unless given)."""
    return GeneralizedRCNNTransform(
        min_size, max_size,
        image_mean or [0.485, 0.456, 0.406],
        image_std or [0.229, 0.224, 0.225],
        **kwargs,
    )
