"""Every backbone trains a few iterations of the ladder's Faster R-CNN on tiny images (configs/backbones/)."""

from pathlib import Path

import pytest
import torch

from detect.backbones import BACKBONES
from detect.build import build_detector
from detect.config import load_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "backbones"
SLOW = {"vgg16", "vgg16_fpn", "wide_resnet50_2", "wide_resnet50_2_fpn", "resnext50_32x4d_fpn", "resnet50_fpn",
        "densenet121_fpn"}


def _config(name: str):
    """configs/backbones/faster_rcnn_<name>.yaml; an FPN variant gets one anchor size per level."""
    if not name.endswith("_fpn"):
        return load_config(CONFIGS / f"faster_rcnn_{name}.yaml", [])
    levels = 3 if name.startswith("mobilenet") else 5
    sizes = "[" + ",".join(f"[{16 * 2 ** i}]" for i in range(levels)) + "]"
    return load_config(CONFIGS / f"faster_rcnn_{name[:-4]}.yaml",
                       [f"model.backbone.name={name}", f"model.rpn.anchors.sizes={sizes}"])


def test_every_single_map_backbone_has_a_config():
    names = {p.stem.removeprefix("faster_rcnn_") for p in CONFIGS.glob("faster_rcnn_*.yaml")}
    assert names == {n for n in BACKBONES if not n.endswith("_fpn")}
    for name in names:  # only the backbone differs from the ladder's Faster R-CNN
        ours, ladder = load_config(CONFIGS / f"faster_rcnn_{name}.yaml", []), load_config(
            CONFIGS.parent / "ladder" / "faster_rcnn.yaml", [])
        ladder.model.backbone.name = name
        assert ours == ladder


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in BACKBONES])
def test_faster_rcnn_trains_a_few_iterations(name):
    model = build_detector(_config(name), num_classes=2).train()
    generator = torch.Generator().manual_seed(0)
    images = [torch.rand(3, 96, 96, generator=generator), torch.rand(3, 96, 80, generator=generator)]
    targets = [{"boxes": torch.tensor([[8.0, 10.0, 60.0, 70.0]]), "labels": torch.tensor([1])},
               {"boxes": torch.tensor([[20.0, 5.0, 70.0, 50.0], [0.0, 50.0, 30.0, 90.0]]), "labels": torch.tensor([2, 1])}]
    params = [p for p in model.parameters() if p.requires_grad]
    before = [p.detach().clone() for p in params]
    optimizer = torch.optim.SGD(params, lr=1e-3, momentum=0.9)
    for _ in range(2):
        losses = model(images, targets)
        total = sum(losses.values())
        assert torch.isfinite(total), losses
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
    backbone_params = {id(p) for p in model.backbone.parameters()}
    moved = [id(p) in backbone_params for p, b in zip(params, before) if not torch.equal(p, b)]
    assert any(moved)  # the backbone itself learned, not only the heads
