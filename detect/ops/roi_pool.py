"""RoI max pooling (Fast R-CNN) through a range-max table: fast CPU forward, exact.

``roi_pool(input, boxes, output_size, spatial_scale)`` returns exactly what
``torchvision.ops.roi_pool`` returns (same bins, same maximum, 0 in empty bins):
``input`` (B, C, H, W) float32/float64, ``boxes`` (K, 5) rows
``(batch_index, x1, y1, x2, y2)`` in input-image pixels (or a list of (K_i, 4)
per image) -> (K, C, out_h, out_w) in the input's dtype.

Why: at test time Fast R-CNN pools ~2000 RoIs from one small map (16x16, 128
channels here). torchvision's CPU kernel loops over every (RoI, channel, bin,
pixel) and zero-fills an output and an argmax buffer first; it was ~70% of Fast
R-CNN's network time. But a bin is a rectangle of pixels and the map is small,
so there are only H(H+1)/2 x W(W+1)/2 distinct rectangles. This op computes the
maximum of every rectangle once per image (a table of (rectangles, C), built
separably: running maxima over column ranges of growing length, then over row
ranges, ~H+W vectorised calls), and every (RoI, bin) becomes one row lookup
(``index_select``), with an extra all-zero row for empty bins. A max does no
arithmetic on the values, so the result is bit-for-bit the kernel's as long as
the bin boundaries and the tie rule are: they follow torchvision's CPU kernel
(``roi_pool_kernel.cpp``) step by step, in the input dtype:

* ``start = round(x1 * scale)``, ``end = round(x2 * scale)`` with C's ``round``
  (half away from zero; ``torch.round`` rounds half to even);
* ``size = max(end - start + 1, 1)`` (malformed boxes become 1 pixel);
  ``bin = float(size) / float(out)``;
* bin ``p`` covers ``[floor(p * bin), ceil((p + 1) * bin))`` + ``start``, clipped
  to ``[0, H]`` (``[0, W]``); an empty bin outputs 0;
* a non-empty bin starts from ``-FLT_MAX`` and scans rows then columns taking
  ``v > max``: NaNs are skipped, all -inf gives ``-FLT_MAX``, and among equal values
  (0.0 and -0.0) the first pixel wins. The table maps values not above ``-FLT_MAX`` to
  it and grows its ranges with the same ``>`` (later columns, then later rows, win
  only when greater), so it picks the same pixel.

torchvision's kernel is used instead (:func:`use_table` says when) if a gradient
is needed (its argmax backward is the reference for training), off the CPU, for
other dtypes, and when one image's table would exceed ``MAX_TABLE_ELEMENTS``.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchvision.ops import roi_pool as tv_roi_pool
from torchvision.ops._utils import convert_boxes_to_roi_format

from detect.ops.level_pooler import LevelPooler

# One image's table has H(H+1)/2 * W(W+1)/2 * C elements (table_elements): 2.4M for
# 16x16x128 (9.5 MB float32), 8.2M for 22x22x128 (just over), 36M for 32x32x128. It grows as
# H^2 W^2 while the kernel's work grows with the RoIs' area, so the bound is a memory cap
# (32 MB float32 / 64 MB float64 per table) that keeps the table where it clearly wins.
# Measured with the bound lifted (2000 RoIs as in benchmarks/roi_pool_speed.py, one thread):
# the table took 36 / 38 / 84 / 124 / 258 ms, the kernel 123 / 136 / 164 / 198 / 230 ms,
# on 16 / 22 / 28 / 32 / 40 px square maps.
# FPN's fine levels (e.g. 200x200) would need hundreds of GB: they use the kernel.
MAX_TABLE_ELEMENTS = 8_000_000
MIN_ROIS = 32
MIN_OUTPUT_PER_TABLE = 1 / 3
_FLT_MAX = 3.4028234663852886e38  # C's FLT_MAX, the kernel's initial maximum for float and double alike


def table_elements(height: int, width: int, channels: int) -> int:
    """Elements of one image's range-max table: every row range x every column range x C."""
    return (height * (height + 1) // 2) * (width * (width + 1) // 2) * channels


def table_allowed(feat: Tensor) -> bool:
    """True if the table may pool ``feat``: CPU, float32/float64, no gradient needed, one image's table small enough."""
    _, channels, height, width = feat.shape
    return (
        feat.device.type == "cpu"
        and feat.dtype in (torch.float32, torch.float64)
        and not (torch.is_grad_enabled() and feat.requires_grad)
        and 0 < table_elements(height, width, channels) <= MAX_TABLE_ELEMENTS
    )


def use_table(feat: Tensor, n_rois: int, bins: int) -> bool:
    """True if :func:`roi_pool` pools ``n_rois`` RoIs of ``bins`` bins each from ``feat`` with the table.

    Otherwise torchvision's kernel runs: when a gradient is needed (its argmax backward
    is the reference for training), off the CPU, for dtypes other than float32/float64,
    for tables over ``MAX_TABLE_ELEMENTS``, and for few RoIs. The table costs about a
    write of its elements plus a fixed ~0.5 ms of calls; the kernel, one pass over every
    RoI's pixels per channel. Measured on one core, the table wins from ~30 RoIs on a
    7x7x256 map and from ~100-150 RoIs on 16x16x128: roughly once there are
    ``MIN_ROIS`` RoIs and the output has ``MIN_OUTPUT_PER_TABLE`` x the tables' elements.
    """
    n_img, channels, height, width = feat.shape
    return (
        table_allowed(feat)
        and n_rois >= MIN_ROIS
        and n_rois * bins * channels >= MIN_OUTPUT_PER_TABLE * table_elements(height, width, channels) * n_img
    )


def _c_round(x: Tensor) -> Tensor:
    """C's ``round``: halves away from zero. ``x - trunc(x)`` is exact, unlike ``floor(x + 0.5)``."""
    whole = torch.trunc(x)
    return whole + torch.where((x - whole).abs() >= 0.5, torch.sign(x), torch.zeros_like(x))


def _range_offsets(n: int) -> list[int]:
    """Table row of range [start, start + length) is ``offsets[length] + start`` (lengths 1..n)."""
    offsets = [0, 0]
    for length in range(1, n):
        offsets.append(offsets[-1] + n - length + 1)
    return offsets


def _take_greater(prev: Tensor, new: Tensor, out: Tensor) -> None:
    """``out = new if new > prev else prev``: the kernel's update, so ties keep the earlier pixel.

    Only needed when the map holds -0.0: equal values are otherwise identical bits
    and the cheaper ``torch.maximum`` (whose vectorised and scalar paths return
    different operands on ties: the sign of a zero maximum) gives the same result.
    """
    torch.where(new > prev, new, prev, out=out)


def _maximum(prev: Tensor, new: Tensor, out: Tensor) -> None:
    torch.maximum(prev, new, out=out)


def _range_max_table(feat: Tensor) -> Tensor:
    """(B, C, H, W) -> (NH * B * NW + 1, C): the max over every row range x column range of each image.

    Row ``(h * B + b) * NW + w`` holds image ``b``'s maximum over row range ``h`` x
    column range ``w``; NH = H(H+1)/2 row ranges and NW = W(W+1)/2 column ranges are
    ordered as in :func:`_range_offsets`. The last row is zeros (for empty bins).
    Values are mapped like the kernel's comparison chain (NaN and -inf -> -FLT_MAX) first.
    Shapes: x (H, B, W, C); ``cols`` = table[:H] (H, B, NW, C) holds single-row ranges.
    """
    n_img, channels, height, width = feat.shape
    x = feat.permute(2, 0, 3, 1).contiguous()  # (H, B, W, C): ranges along W, then along H, C contiguous
    x = torch.where(x > -_FLT_MAX, x, -_FLT_MAX)  # the kernel's start value: NaN and -inf never win
    combine = _take_greater if bool(((x == 0) & torch.signbit(x)).any()) else _maximum  # -0.0: ties matter
    off_w, off_h = _range_offsets(width), _range_offsets(height)
    n_w, n_h = width * (width + 1) // 2, height * (height + 1) // 2
    flat = feat.new_empty((n_h * n_img * n_w + 1, channels))
    flat[-1] = 0
    table = flat[:-1].view(n_h, n_img, n_w, channels)
    cols = table[:height]  # row ranges of length 1 hold the column-range maxima of single rows
    cols[:, :, :width] = x
    for length in range(2, width + 1):  # [w, w + length) = max([w, w + length - 1), column w + length - 1)
        prev = cols[:, :, off_w[length - 1] : off_w[length - 1] + width - length + 1]
        combine(prev, x[:, :, length - 1 :], out=cols[:, :, off_w[length] : off_w[length] + width - length + 1])
    for length in range(2, height + 1):  # [h, h + length) = max([h, h + length - 1), row h + length - 1)
        prev = table[off_h[length - 1] : off_h[length - 1] + height - length + 1]
        combine(prev, cols[length - 1 :], out=table[off_h[length] : off_h[length] + height - length + 1])
    return flat


def _bin_ranges(start: Tensor, end: Tensor, bins: int, size: int) -> tuple[Tensor, Tensor]:
    """Per RoI (R,) rounded start/end -> each bin's clipped [lo, hi) along one axis: 2 x (R, bins) int64."""
    dtype = start.dtype
    roi_size = (end - start + 1).clamp_min(1)  # malformed RoIs are forced to one pixel
    bin_size = roi_size.to(dtype) / torch.tensor(bins, dtype=dtype)  # float(size) / float(bins), in dtype
    cells = torch.arange(bins + 1, dtype=dtype)
    edges = cells[None, :] * bin_size[:, None]  # (R, bins + 1): p * bin_size in dtype
    lo = torch.floor(edges[:, :-1]).long() + start[:, None]
    hi = torch.ceil(edges[:, 1:]).long() + start[:, None]
    return lo.clamp(0, size), hi.clamp(0, size)


def _table_rows(rois: Tensor, n_img: int, height: int, width: int, out_h: int, out_w: int, scale: float) -> Tensor:
    """(R, 5) RoIs -> (R * out_h * out_w,) table rows, bins in (ph, pw) order; empty bins -> the zero row."""
    dtype = rois.dtype
    coords = _c_round(rois[:, 1:] * torch.tensor(scale, dtype=dtype)).long()  # (R, 4): start_w, start_h, end_w, end_h
    img = rois[:, 0].long()
    y0, y1 = _bin_ranges(coords[:, 1], coords[:, 3], out_h, height)  # (R, out_h)
    x0, x1 = _bin_ranges(coords[:, 0], coords[:, 2], out_w, width)  # (R, out_w)
    off_h = torch.tensor(_range_offsets(height) + [0])  # index by length (0 for empty: masked below)
    off_w = torch.tensor(_range_offsets(width) + [0])
    n_w = width * (width + 1) // 2
    row_h = off_h[(y1 - y0).clamp_min(0)] + y0  # (R, out_h) row-range index
    row_w = off_w[(x1 - x0).clamp_min(0)] + x0  # (R, out_w) column-range index
    rows = (row_h[:, :, None] * n_img + img[:, None, None]) * n_w + row_w[:, None, :]  # (R, out_h, out_w)
    empty = (y1 <= y0)[:, :, None] | (x1 <= x0)[:, None, :]
    zero_row = (height * (height + 1) // 2) * n_img * n_w
    return torch.where(empty, zero_row, rows).reshape(-1)


def _gather_bins(table: Tensor, rows: Tensor, n_rois: int, out_h: int, out_w: int) -> Tensor:
    """Table rows -> (R, C, out_h, out_w): gather a few RoIs at a time, transpose each block into place.

    ``index_select`` yields bins-major (R, bins, C) blocks; the output wants (R, C, bins).
    Gathering ~0.8 MB at a time into one reused scratch buffer and transposing it
    straight into the output touches the big output once (a fresh 50 MB tensor's
    page faults alone cost ~20 ms here) instead of writing and re-reading a full-size
    intermediate.
    """
    channels, bins = table.shape[1], out_h * out_w
    out = table.new_empty((n_rois, channels, out_h, out_w))
    chunk = max(1, 200_000 // (bins * channels))
    scratch = table.new_empty((min(chunk, n_rois) * bins, channels))
    for first in range(0, n_rois, chunk):
        count = min(chunk, n_rois - first)
        block = scratch[: count * bins]
        torch.index_select(table, 0, rows[first * bins : (first + count) * bins], out=block)
        out[first : first + count].copy_(block.view(count, out_h, out_w, channels).permute(0, 3, 1, 2))
    return out


def _pool_images(input: Tensor, rois: Tensor, out_h: int, out_w: int, scale: float) -> Tensor:
    """The table path for RoIs of ``input``'s images (batch indices already local to ``input``)."""
    n_img, channels, height, width = input.shape
    table = _range_max_table(input)
    rows = _table_rows(rois, n_img, height, width, out_h, out_w, scale)
    return _gather_bins(table, rows, len(rois), out_h, out_w)


class _KernelRoIPool(torch.autograd.Function):
    """torchvision's CPU kernels, forward and backward, called directly.

    ``torchvision.ops.roi_pool``'s own autograd wrapper costs several times its backward kernel
    on the CPU (measured: 8 images x 128 channels x 512 RoIs, one thread: kernel 5.7 ms, forward +
    backward through the wrapper 53 ms against a 28 ms forward); the kernels are the same, so the
    values and gradients are torchvision's bit for bit.
    """

    @staticmethod
    def forward(ctx, input: Tensor, rois: Tensor, spatial_scale: float, out_h: int, out_w: int) -> Tensor:
        output, argmax = torch.ops.torchvision.roi_pool(input, rois, spatial_scale, out_h, out_w)
        ctx.save_for_backward(rois, argmax)
        ctx.args = (spatial_scale, out_h, out_w, *input.shape)
        return output

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        rois, argmax = ctx.saved_tensors
        grad = torch.ops.torchvision._roi_pool_backward(grad_output.contiguous(), rois, argmax, *ctx.args)
        return grad, None, None, None, None


def _kernel_pool(input: Tensor, boxes: Tensor, out_h: int, out_w: int, spatial_scale: float) -> Tensor:
    """torchvision's kernel; when a gradient is needed on the CPU, without its autograd wrapper."""
    if (input.device.type == "cpu" and torch.is_grad_enabled() and input.requires_grad
            and boxes.dtype == input.dtype and boxes.dim() == 2 and boxes.shape[1] == 5):
        return _KernelRoIPool.apply(input, boxes, float(spatial_scale), out_h, out_w)
    return tv_roi_pool(input, boxes, (out_h, out_w), spatial_scale)


def roi_pool(
    input: Tensor,
    boxes: Tensor | list[Tensor],
    output_size: int | tuple[int, int],
    spatial_scale: float = 1.0,
    *,
    impl: str = "auto",
) -> Tensor:
    """``torchvision.ops.roi_pool``'s forward, bit for bit: (B, C, H, W), (K, 5) -> (K, C, out_h, out_w).

    ``impl``: ``"auto"`` (the table when :func:`use_table` says so), ``"table"`` (the
    table whenever it is allowed at all: CPU, float32/64, no gradient, size bound; for
    tests and benchmarks) or ``"torchvision"``. Images are tabled a group at a time so
    that no table exceeds ``MAX_TABLE_ELEMENTS``.
    """
    if impl not in ("auto", "table", "torchvision"):
        raise ValueError(f"impl must be auto, table or torchvision, not {impl!r}")
    if not isinstance(boxes, Tensor):
        boxes = convert_boxes_to_roi_format(boxes)
    out_h, out_w = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)
    n_img, channels, height, width = input.shape
    if impl == "auto":
        usable = use_table(input, len(boxes), out_h * out_w)
    else:
        usable = impl == "table" and table_allowed(input)
    if not usable or boxes.dtype != input.dtype or boxes.dim() != 2 or boxes.shape[1] != 5 or not len(boxes):
        return _kernel_pool(input, boxes, out_h, out_w, spatial_scale)
    with torch.no_grad():
        img = boxes[:, 0].long()  # the kernel's int(batch_index): truncation
        if not (0 <= int(img.min()) and int(img.max()) < n_img):
            return tv_roi_pool(input, boxes, (out_h, out_w), spatial_scale)  # no image to read: theirs to handle
        group = MAX_TABLE_ELEMENTS // table_elements(height, width, channels)
        if n_img <= group:
            return _pool_images(input, boxes, out_h, out_w, scale=spatial_scale)
        out = input.new_zeros((len(boxes), channels, out_h, out_w))
        for first in range(0, n_img, group):
            keep = torch.where((img >= first) & (img < first + group))[0]
            if len(keep):
                local = boxes[keep].clone()
                local[:, 0] -= first
                out.index_copy_(0, keep, _pool_images(input[first : first + group], local, out_h, out_w, spatial_scale))
        return out


class RoIPool(LevelPooler):
    """Max pooling over quantised bins (Fast R-CNN paper) behind the ``MultiScaleRoIAlign`` interface.

    Equals ``torchvision.ops.roi_pool`` exactly; see :func:`roi_pool` for how and when it is faster.
    """

    def __init__(self, featmap_names: list[str], output_size: int | tuple[int, int]):
        super().__init__(featmap_names, output_size, sampling_ratio=0)

    def _pool(self, feat: Tensor, rois: Tensor, batch_idx: Tensor, scale: float) -> Tensor:
        if feat.dtype in (torch.bfloat16, torch.float16):
            # A map from an autocast region (bfloat16 CPU training, detect/engine/precision.py): torchvision
            # has no reduced-precision roi_pool kernel, so pool in float32 (a max: no value is rounded) and,
            # as torchvision's autocast wrappers do, hand back the map's dtype.
            return self._pool(feat.float(), rois, batch_idx, scale).to(feat.dtype)
        rois5 = torch.cat([batch_idx[:, None].to(feat.dtype), rois.to(feat.dtype)], dim=1)
        return roi_pool(feat, rois5, self.output_size, spatial_scale=scale)


__all__ = ["MAX_TABLE_ELEMENTS", "RoIPool", "roi_pool", "table_allowed", "table_elements", "use_table"]
