"""The range-max-table RoI max pooling against torchvision's roi_pool kernel (the oracle): bit-equal."""

import pytest
import torch
from torchvision.ops import roi_pool as tv_roi_pool

import detect.ops.roi_pool as rp
from detect.ops.roi_align import RoIPool as ReExported
from detect.ops.roi_pool import RoIPool, roi_pool, table_allowed, use_table


def _rois(seed: int, n: int, n_img: int, extent: float, dtype: torch.dtype) -> torch.Tensor:
    """(n, 5) RoIs mixing ordinary, partly/wholly outside, negative, tiny and reversed (x2 < x1) boxes."""
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g, dtype=dtype) * extent * 1.6 - 0.3 * extent  # many start outside
    wh = torch.rand(n, 2, generator=g, dtype=dtype) * extent * 0.9
    kind = torch.randint(0, 4, (n, 1), generator=g)
    wh = torch.where(kind == 1, wh * 0.02, wh)  # tiny: under one feature pixel
    wh = torch.where(kind == 2, -wh * 0.3, wh)  # reversed: x2 < x1, y2 < y1
    boxes = torch.cat([xy, xy + wh], dim=1)
    img = torch.randint(0, n_img, (n, 1), generator=g).to(dtype)
    return torch.cat([img, boxes], dim=1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("output_size", [7, (3, 5)])
@pytest.mark.parametrize("seed", range(4))
def test_table_equals_torchvision_on_random_boxes(dtype, output_size, seed):
    g = torch.Generator().manual_seed(100 + seed)
    feats = torch.randn(3, 6, 16, 13, generator=g, dtype=dtype)  # H != W
    rois = _rois(seed, 400, 3, 128.0, dtype)
    rois = rois[rois[:, 0] != 1]  # image 1 has no boxes
    for scale in (0.125, 0.3):
        out = roi_pool(feats, rois, output_size, scale, impl="table")
        ref = tv_roi_pool(feats, rois, output_size, scale)
        assert out.dtype == dtype and out.is_contiguous()
        assert torch.equal(out, ref)
    assert (ref == 0).any()  # empty bins (boxes outside the map) were exercised


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_rounding_ties_go_away_from_zero(dtype):
    """x * scale == k + 0.5 rounds like C's round (2.5 -> 3, -2.5 -> -3), not half-to-even."""
    feats = torch.randn(1, 4, 12, 12, generator=torch.Generator().manual_seed(3), dtype=dtype)
    ks = torch.arange(-4, 12, dtype=dtype)
    half = (ks + 0.5) * 8  # * 0.125 -> exactly k + 0.5
    below = torch.nextafter(torch.tensor(0.5, dtype=dtype), torch.tensor(0.0, dtype=dtype)) * 8  # rounds to 0
    starts = torch.cat([half, below.reshape(1), -below.reshape(1)])
    x1, y1 = torch.meshgrid(starts, starts.flip(0), indexing="ij")
    x1, y1 = x1.reshape(-1), y1.reshape(-1)
    rois = torch.stack([torch.zeros_like(x1), x1, y1, x1 + 20, y1 + 36], dim=1)
    out = roi_pool(feats, rois, 7, 0.125, impl="table")
    assert torch.equal(out, tv_roi_pool(feats, rois, 7, 0.125))
    assert not torch.equal(torch.round(half * 0.125), rp._c_round(half * 0.125))  # the tie matters here


def test_nan_and_infinite_features_like_the_kernel():
    """The kernel skips NaN (``v > max`` is false) and starts non-empty bins at -FLT_MAX."""
    feats = torch.randn(2, 3, 10, 10, generator=torch.Generator().manual_seed(4))
    feats[0, 0, :5] = float("nan")
    feats[0, 1, 3:8, 2:9] = float("-inf")
    feats[1, 2, 4, 4] = float("inf")
    feats[1, 0] = float("nan")  # a whole channel of NaN pools to -FLT_MAX
    rois = _rois(5, 200, 2, 80.0, torch.float32)
    out = roi_pool(feats, rois, 7, 0.125, impl="table")
    assert torch.equal(out, tv_roi_pool(feats, rois, 7, 0.125))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_signed_zeros_bit_for_bit(dtype):
    """Bins holding both 0.0 and -0.0 as their maximum: the kernel keeps the first pixel in row-major order."""
    g = torch.Generator().manual_seed(14)
    signs = torch.randint(0, 2, (2, 64, 12, 12), generator=g).to(dtype) * 2 - 1
    feats = torch.zeros(2, 64, 12, 12, dtype=dtype) * signs  # +0.0 and -0.0 only; 64 channels: vectorised paths
    feats[1, :, ::3] = -1.0
    rois = _rois(15, 300, 2, 96.0, dtype)
    out = roi_pool(feats, rois, 7, 0.125, impl="table")
    ref = tv_roi_pool(feats, rois, 7, 0.125)
    bits = torch.int32 if dtype == torch.float32 else torch.int64
    assert torch.equal(out.view(bits), ref.view(bits))
    assert (torch.signbit(ref) & (ref == 0)).any() and (~torch.signbit(ref) & (ref == 0)).any()


def test_image_groups_when_the_table_bound_is_reached(monkeypatch):
    """A batch whose tables exceed the bound is tabled a few images at a time, same result."""
    feats = torch.randn(5, 4, 9, 11, generator=torch.Generator().manual_seed(6))
    monkeypatch.setattr(rp, "MAX_TABLE_ELEMENTS", 2 * rp.table_elements(9, 11, 4))  # 2 images per table
    rois = _rois(7, 300, 5, 88.0, torch.float32)
    rois = rois[rois[:, 0] != 3]
    assert torch.equal(roi_pool(feats, rois, (2, 4), 0.125, impl="table"), tv_roi_pool(feats, rois, (2, 4), 0.125))


def test_when_the_table_is_used():
    feats = torch.zeros(1, 128, 16, 16)
    assert use_table(feats, 2000, 49)  # Fast R-CNN at test time
    assert not use_table(feats, 20, 49)  # few RoIs: the kernel is faster
    assert not use_table(torch.zeros(1, 128, 64, 64), 2000, 49)  # table over the bound (FPN's big levels)
    assert not table_allowed(torch.zeros(1, 8, 16, 16, dtype=torch.float16))
    grad_feats = torch.zeros(1, 8, 16, 16, requires_grad=True)
    assert not table_allowed(grad_feats)
    with torch.no_grad():
        assert table_allowed(grad_feats)


def test_gradient_is_torchvisions():
    """With a gradient needed, the op is torchvision's kernel (its argmax backward)."""
    feats = torch.randn(2, 4, 16, 16, dtype=torch.float64, requires_grad=True)
    boxes = [_rois(8, 60, 1, 128.0, torch.float64)[:, 1:], _rois(9, 40, 1, 128.0, torch.float64)[:, 1:]]
    out = RoIPool(["0"], 7)({"0": feats}, boxes, [(128, 128)])
    weights = torch.arange(out.numel(), dtype=out.dtype).reshape(out.shape)
    (grad,) = torch.autograd.grad((out * weights).sum(), feats)
    rois = torch.cat([torch.cat([torch.full((len(b), 1), float(i), dtype=b.dtype), b], 1) for i, b in enumerate(boxes)])
    ref = tv_roi_pool(feats, rois, 7, 0.125)
    (ref_grad,) = torch.autograd.grad((ref * weights).sum(), feats)
    assert torch.equal(out, ref) and torch.equal(grad, ref_grad)


def test_module_uses_the_table_in_eval_and_equals_torchvision():
    feats = torch.randn(2, 16, 16, 16, generator=torch.Generator().manual_seed(10))
    boxes = [_rois(11, 500, 1, 128.0, torch.float32)[:, 1:], torch.zeros(0, 4)]
    assert use_table(feats, 500, 49)
    with torch.inference_mode():  # how detladder detect / eval run the detector
        out = RoIPool(["0"], 7)({"0": feats}, boxes, [(128, 128)])
    rois = torch.cat([torch.zeros(500, 1), boxes[0]], dim=1)
    assert torch.equal(out, tv_roi_pool(feats, rois, 7, 0.125))
    assert ReExported is RoIPool  # build_roi_pooler's module offers both operators


def test_multilevel_dict_goes_through_the_level_pooler():
    """FPN input: each box is pooled from its LevelMapper level (big levels by the kernel, small by the table)."""
    g = torch.Generator().manual_seed(12)
    names = ["0", "1", "2", "3"]
    feats = {k: torch.randn(1, 4, 256 // s, 256 // s, generator=g) for k, s in zip(names, (4, 8, 16, 32))}
    xy = torch.rand(400, 2, generator=g) * 200
    wh = torch.exp(torch.rand(400, 2, generator=g) * 3.4) * 8  # 8-240 px: sizes spread over the levels
    boxes = [torch.cat([xy, xy + wh], dim=1)]
    op = RoIPool(names, 7)
    out = op(feats, boxes, [(256, 256)])
    levels = op.map_levels(boxes)
    assert len(torch.unique(levels)) >= 3
    for level, (name, scale) in enumerate(zip(names, op.scales)):
        keep = levels == level
        rois = torch.cat([torch.zeros(int(keep.sum()), 1), boxes[0][keep]], dim=1)
        assert torch.equal(out[keep], tv_roi_pool(feats[name], rois, 7, scale))


def test_no_boxes_at_all():
    out = RoIPool(["0"], 7)({"0": torch.randn(2, 8, 16, 16)}, [torch.zeros(0, 4), torch.zeros(0, 4)], [(128, 128)])
    assert out.shape == (0, 8, 7, 7)


def test_bfloat16_map_from_autocast_pools_like_float32_and_keeps_its_dtype():
    """bfloat16 CPU training (detect/engine/precision.py) hands the pooler a bfloat16 map: a max rounds nothing."""
    torch.manual_seed(0)
    feat = torch.randn(2, 8, 16, 16).bfloat16().requires_grad_()
    boxes = [torch.tensor([[0.0, 0.0, 100.0, 90.0], [10.5, 20.25, 60.0, 127.0]]), torch.tensor([[4.0, 4.0, 40.0, 30.0]])]
    pooler = RoIPool(["0"], 7)
    out = pooler({"0": feat}, boxes, [(128, 128), (128, 128)])
    assert out.dtype == torch.bfloat16
    rois = torch.cat([torch.tensor([[0.0], [0.0], [1.0]]), torch.cat(boxes)], dim=1)
    assert torch.equal(out.float(), tv_roi_pool(feat.detach().float(), rois, 7, 1 / 8))
    out.float().sum().backward()
    assert feat.grad is not None and feat.grad.dtype == torch.bfloat16
