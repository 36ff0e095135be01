"""Dense sliding windows: every scale x aspect ratio at every position of a regular grid.

Windows follow torchvision's ``AnchorGenerator`` conventions: ``scale`` is the
square root of the window's area in pixels and ``ratio`` is height / width, so
a window is ``w = scale / sqrt(ratio)`` by ``h = scale * sqrt(ratio)``.

Window centres lie on the grid ``stride / 2 + i * stride`` (i = 0, 1, ...) in x
and in y, covering the whole image; windows that stick out are clipped to it.
The count is therefore exactly

    N = len(scales) * len(ratios) * ceil(height / stride) * ceil(width / stride)

(clipping can make two windows equal near a border; none are dropped, so the
formula holds). Order: scale, then ratio, then row, then column.
"""

from __future__ import annotations

import math

import numpy as np


def window_count(height: int, width: int, scales, ratios, stride: float) -> int:
    """The number of windows ``sliding_windows`` returns for these arguments (the formula above)."""
    if height <= 0 or width <= 0:
        return 0
    return len(scales) * len(ratios) * math.ceil(height / stride) * math.ceil(width / stride)


def sliding_windows(
    height: int,
    width: int,
    scales=(32.0, 64.0, 96.0),
    ratios=(0.5, 1.0, 2.0),
    stride: float = 16.0,
) -> np.ndarray:
    """All windows for an image of ``height`` x ``width`` pixels -> (N, 4) float32.

    Boxes are ``[x1, y1, x2, y2]``, 0-based, x2/y2 exclusive, clipped to
    ``[0, width] x [0, height]``; N is given by ``window_count``.
    """
    if stride <= 0:
        raise ValueError(f"sliding_windows: stride must be > 0, got {stride}")
    if any(s <= 0 for s in scales) or any(r <= 0 for r in ratios):
        raise ValueError("sliding_windows: scales and ratios must be > 0")
    if height <= 0 or width <= 0:
        return np.zeros((0, 4), np.float32)
    scales = np.asarray(scales, np.float64)
    ratios = np.asarray(ratios, np.float64)
    hs = (scales[:, None] * np.sqrt(ratios)[None, :]).reshape(-1)  # (S*R,)
    ws = (scales[:, None] / np.sqrt(ratios)[None, :]).reshape(-1)
    cx = stride / 2.0 + stride * np.arange(math.ceil(width / stride))  # (nx,)
    cy = stride / 2.0 + stride * np.arange(math.ceil(height / stride))  # (ny,)
    cyy, cxx = np.meshgrid(cy, cx, indexing="ij")  # (ny, nx), row-major
    cxx, cyy = cxx.reshape(1, -1), cyy.reshape(1, -1)
    half_w, half_h = ws[:, None] / 2.0, hs[:, None] / 2.0  # (S*R, 1)
    boxes = np.stack(
        [cxx - half_w, cyy - half_h, cxx + half_w, cyy + half_h], axis=-1
    ).reshape(-1, 4)  # (S*R, ny*nx, 4) -> (N, 4)
    boxes[:, 0::2] = np.clip(boxes[:, 0::2], 0, width)
    boxes[:, 1::2] = np.clip(boxes[:, 1::2], 0, height)
    return boxes.astype(np.float32)
