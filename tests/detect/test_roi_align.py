"""The matmul RoIAlign and RoIPool operators against torchvision's kernels (the oracle)."""

import pytest
import torch
from torchvision.ops import MultiScaleRoIAlign, roi_align, roi_pool

from detect.ops.roi_align import MatmulRoIAlign, RoIPool, build_roi_pooler


def _boxes(seed: int, n: int, extent: float) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g, dtype=torch.float64) * extent * 1.1 - 0.05 * extent  # some start outside
    wh = torch.rand(n, 2, generator=g, dtype=torch.float64) * extent * 0.8 + 0.2
    return torch.cat([xy, xy + wh], dim=1)


def _rois(boxes: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat([torch.cat([torch.full((len(b), 1), float(i), dtype=b.dtype), b], 1) for i, b in enumerate(boxes)])


@pytest.mark.parametrize("aligned", [True, False])
@pytest.mark.parametrize("sampling_ratio", [1, 2])
def test_matmul_roi_align_equals_torchvision(aligned, sampling_ratio):
    feats = torch.randn(3, 8, 16, 20, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    boxes = [_boxes(2, 40, 150), _boxes(3, 0, 150), _boxes(4, 17, 150)]  # an image with no boxes too
    op = MatmulRoIAlign(["0"], 7, sampling_ratio, aligned=aligned)
    out = op({"0": feats}, boxes, [(128, 160)])
    assert op.scales == [0.125]
    ref = roi_align(feats, _rois(boxes), 7, spatial_scale=0.125, sampling_ratio=sampling_ratio, aligned=aligned)
    assert out.shape == (57, 8, 7, 7)
    torch.testing.assert_close(out, ref, atol=1e-10, rtol=0)


def test_matmul_roi_align_gradient_equals_torchvision():
    feats = torch.randn(2, 4, 16, 16, dtype=torch.float64, requires_grad=True)
    boxes = [_boxes(5, 30, 128), _boxes(6, 12, 128)]
    out = MatmulRoIAlign(["0"], 7, 2)({"0": feats}, boxes, [(128, 128)])
    (grad,) = torch.autograd.grad((out * torch.arange(out.numel()).reshape(out.shape)).sum(), feats)
    ref = roi_align(feats, _rois(boxes), 7, spatial_scale=0.125, sampling_ratio=2, aligned=True)
    (ref_grad,) = torch.autograd.grad((ref * torch.arange(ref.numel()).reshape(ref.shape)).sum(), feats)
    torch.testing.assert_close(grad, ref_grad, atol=1e-8, rtol=0)


def test_matmul_roi_align_float32_within_1e5():
    feats = torch.randn(2, 16, 16, 16)
    boxes = [_boxes(7, 64, 128).float(), _boxes(8, 64, 128).float()]
    out = MatmulRoIAlign(["0"], 7, 2)({"0": feats}, boxes, [(128, 128)])
    ref = roi_align(feats, _rois(boxes), 7, spatial_scale=0.125, sampling_ratio=2, aligned=True)
    assert (out - ref).abs().max() < 1e-5


def test_multilevel_matmul_matches_torchvision_level_assignment():
    """With FPN levels each box is pooled from the level torchvision's LevelMapper picks."""
    g = torch.Generator().manual_seed(9)
    feats = {k: torch.randn(1, 4, 256 // s, 256 // s, generator=g, dtype=torch.float64) for k, s in (("0", 4), ("1", 8), ("2", 16), ("3", 32))}
    boxes = [_boxes(10, 50, 240)]
    out = MatmulRoIAlign(["0", "1", "2", "3"], 7, 2, aligned=False)(feats, boxes, [(256, 256)])
    ref = MultiScaleRoIAlign(["0", "1", "2", "3"], 7, 2)(feats, boxes, [(256, 256)])  # aligned=False inside
    torch.testing.assert_close(out, ref, atol=1e-10, rtol=0)


@pytest.mark.parametrize("n_boxes", [20, 600])  # few boxes: torchvision's kernel; many: the range-max table
def test_roi_pool_equals_torchvision(n_boxes):
    feats = torch.randn(2, 8, 16, 16)
    boxes = [_boxes(11, n_boxes, 128).float().clamp(0, 127), _boxes(12, 9, 128).float().clamp(0, 127)]
    out = RoIPool(["0"], 7)({"0": feats}, boxes, [(128, 128)])
    assert torch.equal(out, roi_pool(feats, _rois(boxes), 7, spatial_scale=0.125))  # a max: bit-equal


def test_build_roi_pooler_names():
    assert type(build_roi_pooler("roi_align", ["0"])) is MultiScaleRoIAlign
    assert isinstance(build_roi_pooler("roi_align_matmul", ["0"]), MatmulRoIAlign)
    assert isinstance(build_roi_pooler("roi_pool", ["0"]), RoIPool)
    with pytest.raises(ValueError):
        build_roi_pooler("nope", ["0"])
