"""Every backbone builds and runs forward at 128 px and 600 px with the channels and strides it declares."""

import pytest
import torch

from detect.backbones import BACKBONES, build_backbone
from detect.backbones.trunks import CUTS

# The heaviest forward passes at 600 px (several seconds each on one CPU thread): the `slow` group.
SLOW_AT_600 = {"vgg16", "vgg16_fpn", "wide_resnet50_2", "wide_resnet50_2_fpn", "resnext50_32x4d_fpn",
               "resnet50_fpn", "densenet121_fpn"}


def _expected_strides(name: str) -> list[int]:
    if name == "tiny":
        return [8]
    if name == "mobilenet_v3_large_fpn":
        return [32, 32, 64]  # torchvision's: the last two stages, both at stride 32, + a pooled level
    if name.endswith("_fpn"):
        return [4, 8, 16, 32, 64]
    return [CUTS[name].stride]


def _check(name: str, size: int) -> None:
    net = build_backbone(name).eval()
    with torch.inference_mode():
        out = net(torch.rand(1, 3, size, size))
    maps = list(out.values()) if isinstance(out, dict) else [out]
    assert all(m.shape[1] == net.out_channels for m in maps)
    assert len(maps) == getattr(net, "num_feature_maps", 1)
    assert len(net.featmap_names) <= len(maps)
    for m, stride in zip(maps, _expected_strides(name), strict=True):
        # ceil- or floor-mode pooling and AlexNet's unpadded 11x11 conv: within 2 px of size / stride
        assert abs(m.shape[-1] - size / stride) <= 2, (name, m.shape, stride)
        assert torch.isfinite(m).all()


@pytest.mark.parametrize("name", BACKBONES)
def test_forward_at_128(name):
    _check(name, 128)


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW_AT_600 else n
                                  for n in BACKBONES])
def test_forward_at_600(name):
    _check(name, 600)
