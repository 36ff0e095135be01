"""Sliding windows: a dense grid of windows, each cropped, warped and classified on its own.

The rung before region proposals: every window of every scale and aspect
ratio at every stride position (``proposals.sliding_window.sliding_windows``; see its
docstring for the count formula) is cut out and warped by the same crop head
as R-CNN (backbone + MLP -> background + C classes, class-specific box
regression), then per-class NMS. The windows depend only on the image size, so
the source makes them itself, in resized-image pixels, and caches them per size.
Training samples windows exactly as R-CNN samples proposals (``RCNNSampler``).

Proposal-source API (docs/architecture.md): ``forward(images: ImageList, features,
targets, proposals) -> (list[(P_i, 4)], {})``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class SlidingWindowSource(nn.Module):
    """All windows of ``scales`` (sqrt of area, px) x ``ratios`` (h / w) every ``stride`` px."""

    def __init__(self, scales: list[float], ratios: list[float], stride: float):
        super().__init__()
        self.scales = list(scales)
        self.ratios = list(ratios)
        self.stride = stride
        self._cache: dict[tuple[int, int], Tensor] = {}

    def windows(self, height: int, width: int) -> Tensor:
        """(N, 4) float32 windows of a height x width image (computed once per size)."""
        key = (int(height), int(width))
        if key not in self._cache:
            from proposals.sliding_window import sliding_windows

            boxes = sliding_windows(key[0], key[1], self.scales, self.ratios, self.stride)
            self._cache[key] = torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4)
        return self._cache[key]

    def forward(self, images, features=None, targets=None, proposals=None):
        device, dtype = images.tensors.device, images.tensors.dtype
        return [self.windows(h, w).to(device=device, dtype=dtype) for h, w in images.image_sizes], {}
