"""RoI pooling operators that plug into torchvision's RoIHeads.

Both are :class:`detect.ops.level_pooler.LevelPooler` subclasses: torchvision's
``MultiScaleRoIAlign`` interface (boxes in input-image pixels, rows in the order of
the boxes list, FPN levels chosen as torchvision does), our pooling per level.

* :class:`MatmulRoIAlign` computes RoIAlign as two matrix products. Bilinear
  sampling is separable: every output cell is ``sum_yx Wy[p, y] Wx[q, x] F[y, x]``
  where ``Wy`` averages the bilinear row weights of the bin's sample points (and
  ``Wx`` likewise for columns). So per RoI, ``out = Wy @ F @ Wx^T`` with ``Wy``
  (out_h, H) and ``Wx`` (out_w, W). On CPU its forward+backward is several times
  faster than torchvision's ``roi_align`` kernel (docs/training.md), and it equals
  ``torchvision.ops.roi_align(..., aligned=..., sampling_ratio=...)`` to ~1e-6.
* :class:`RoIPool` is max pooling over quantised bins (Fast R-CNN paper); it lives
  in :mod:`detect.ops.roi_pool` (a range-max-table forward equal to
  ``torchvision.ops.roi_pool``); :func:`build_roi_pooler` picks between them.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchvision.ops import MultiScaleRoIAlign

from detect.ops.level_pooler import LevelPooler
from detect.ops.roi_pool import RoIPool


def _axis_weights(start: Tensor, length: Tensor, bins: int, grid: int, size: int) -> Tensor:
    """Averaged bilinear weights along one axis: (R,) starts/lengths -> (R, bins, size).

    Follows torchvision's CPU kernel exactly: sample points at bin offsets
    (i + 0.5) / grid; a point outside [-1, size] contributes zero; points in
    [-1, 0) clamp to 0; at the last pixel the upper neighbour is the pixel itself.
    """
    frac = (torch.arange(grid, dtype=start.dtype, device=start.device) + 0.5) / grid  # (g,)
    cells = torch.arange(bins, dtype=start.dtype, device=start.device)  # (bins,)
    bin_size = (length / bins)[:, None, None]
    coords = start[:, None, None] + (cells[None, :, None] + frac[None, None, :]) * bin_size  # (R, bins, g)
    valid = ((coords >= -1.0) & (coords <= size)).to(start.dtype)
    coords = coords.clamp(min=0)
    low = coords.floor().long()
    edge = low >= size - 1
    low = torch.where(edge, torch.full_like(low, size - 1), low)
    high = torch.where(edge, low, low + 1)
    coords = torch.where(edge, low.to(coords.dtype), coords)
    frac_hi = coords - low
    weights = start.new_zeros((*coords.shape, size))  # (R, bins, g, size)
    weights.scatter_add_(-1, low[..., None], ((1 - frac_hi) * valid)[..., None])
    weights.scatter_add_(-1, high[..., None], (frac_hi * valid)[..., None])
    return weights.mean(dim=2)


class MatmulRoIAlign(LevelPooler):
    """RoIAlign as ``Wy @ F @ Wx^T``; ``aligned`` as in ``torchvision.ops.roi_align``.

    ``sampling_ratio`` must be positive (the adaptive ``<= 0`` mode varies the grid
    per RoI; for that use torchvision's operator).
    """

    def __init__(self, featmap_names: list[str], output_size: int | tuple[int, int], sampling_ratio: int, *, aligned: bool = True):
        super().__init__(featmap_names, output_size, sampling_ratio)
        if sampling_ratio <= 0:
            raise ValueError("MatmulRoIAlign needs sampling_ratio > 0")
        self.aligned = aligned

    def _pool(self, feat: Tensor, rois: Tensor, batch_idx: Tensor, scale: float) -> Tensor:
        out_h, out_w = self.output_size
        n_img, channels, height, width = feat.shape
        with torch.no_grad():  # like torchvision's kernel: no gradient flows into the boxes
            offset = 0.5 if self.aligned else 0.0
            box = rois.to(feat.dtype) * scale - offset  # (R, 4) in feature pixels
            w = box[:, 2] - box[:, 0]
            h = box[:, 3] - box[:, 1]
            if not self.aligned:  # legacy mode forces at least one pixel
                w, h = w.clamp(min=1.0), h.clamp(min=1.0)
            wy = _axis_weights(box[:, 1], h, out_h, self.sampling_ratio, height)  # (R, out_h, H)
            wx = _axis_weights(box[:, 0], w, out_w, self.sampling_ratio, width)  # (R, out_w, W)
        # Boxes arrive grouped by image (batch_idx non-decreasing): pool each image's block, then concatenate.
        counts = torch.bincount(batch_idx, minlength=n_img).tolist()
        blocks, first = [], 0
        for b, r in enumerate(counts):
            if r == 0:
                continue
            rows_y, cols_x = wy[first : first + r], wx[first : first + r]
            first += r
            # rows: (r*out_h, H) @ (H, C*W) -> (r, out_h*C, W)
            fmap = feat[b].permute(1, 0, 2).reshape(height, channels * width)
            rows = (rows_y.reshape(r * out_h, height) @ fmap).reshape(r, out_h * channels, width)
            # columns: (r, out_h*C, W) @ (r, W, out_w) -> (r, out_h, C, out_w) -> (r, C, out_h, out_w)
            cells = torch.bmm(rows, cols_x.transpose(1, 2)).reshape(r, out_h, channels, out_w)
            blocks.append(cells.permute(0, 2, 1, 3))
        if not blocks:
            return feat.new_zeros((0, channels, out_h, out_w))
        return torch.cat(blocks, dim=0)


def build_roi_pooler(op: str, featmap_names: list[str], output_size: int = 7, sampling_ratio: int = 2) -> MultiScaleRoIAlign:
    """The pooler named by ``model.roi_head.roi_op``.

    ``roi_align`` is torchvision's own ``MultiScaleRoIAlign`` (legacy ``aligned=False``,
    what its Faster R-CNN checkpoints were trained with); ``roi_align_matmul`` is the
    fast equivalent with ``aligned=True``; ``roi_pool`` is Fast R-CNN's max pooling.
    """
    if op == "roi_align":
        return MultiScaleRoIAlign(featmap_names, output_size, sampling_ratio)
    if op == "roi_align_matmul":
        return MatmulRoIAlign(featmap_names, output_size, sampling_ratio, aligned=True)
    if op == "roi_pool":
        return RoIPool(featmap_names, output_size)
    raise ValueError(f"unknown RoI operator {op!r} (roi_align, roi_align_matmul, roi_pool)")


__all__ = ["MatmulRoIAlign", "RoIPool", "build_roi_pooler"]
