"""The five ladder configs: one per rung, all on the same backbone, weights and seed."""

from __future__ import annotations

import pytest
import torch
import yaml

from detect.build import RUNGS, build_detector, proposal_method
from detect.config import load_config
from tests.detect.ladder_util import LADDER

RUNG_NAMES = ["regression", "sliding_window", "rcnn", "fast_rcnn", "faster_rcnn"]


def _backbone(model):
    """The backbone module of a detector (crop rungs keep it inside their region head)."""
    return model.backbone if model.backbone is not None else model.roi_heads.backbone


@pytest.mark.parametrize("rung", RUNG_NAMES)
def test_each_rung_has_a_config_inheriting_base(rung):
    path = LADDER / f"{rung}.yaml"
    raw = yaml.safe_load(path.read_text())
    assert raw["_base_"] == "../base.yaml"
    assert "backbone" not in raw.get("model", {}), "the backbone is set once, in base.yaml"
    assert "seed" not in raw
    cfg = load_config(path)
    assert cfg.model.rung == rung and rung in RUNGS


def test_rungs_share_backbone_class_width_seed_and_initial_weights():
    configs = {r: load_config(LADDER / f"{r}.yaml") for r in RUNG_NAMES}
    settings = {(c.model.backbone.name, c.model.backbone.width, c.model.backbone.weights, c.seed)
                for c in configs.values()}
    assert len(settings) == 1
    small = {r: load_config(LADDER / f"{r}.yaml", ["model.backbone.width=8"]) for r in RUNG_NAMES}
    backbones = {r: _backbone(build_detector(c, 4)) for r, c in small.items()}
    reference = backbones["faster_rcnn"].state_dict()
    for rung, net in backbones.items():
        assert type(net) is type(backbones["faster_rcnn"]), rung
        state = net.state_dict()
        assert state.keys() == reference.keys(), rung
        assert all(torch.equal(state[k], reference[k]) for k in reference), f"{rung}: different initial weights"


def test_proposal_methods_match_the_rungs():
    expected = {"regression": None, "sliding_window": None, "rcnn": "selective_search",
                "fast_rcnn": "selective_search", "faster_rcnn": None}
    for rung, method in expected.items():
        cfg = load_config(LADDER / f"{rung}.yaml")
        assert proposal_method(cfg) == method, rung
        if method:
            assert cfg.proposals.method == method


def test_rcnn_crops_keep_the_papers_proportions():
    """R-CNN warps ~half-image crops to 227 px with 16 px context; ours scale that to 128 px images."""
    crop = load_config(LADDER / "rcnn.yaml").model.crop
    assert 0.3 <= crop.size / 128 <= 0.6
    assert crop.context_pad / crop.size == pytest.approx(16 / 227, rel=0.05)
    assert (crop.batch_size, crop.positive_fraction, crop.fg_iou_thresh) == (128, 0.25, 0.5)
