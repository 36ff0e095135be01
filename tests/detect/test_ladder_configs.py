"""The five ladder configs: one per rung, all on the same backbone, weights and seed."""

from __future__ import annotations

import pytest
import torch
import yaml

from detect.build import LADDER, build_detector, rung_label
from detect.proposal_route import precomputed_spec
from detect.config import load_config
from tests.detect.ladder_util import LADDER as LADDER_DIR

RUNG_NAMES = ["regression", "sliding_window", "rcnn", "fast_rcnn", "faster_rcnn"]


def _backbone(model):
    """The backbone module of a detector (crop rungs keep it inside their region head)."""
    return model.backbone if model.backbone is not None else model.roi_heads.backbone


@pytest.mark.parametrize("rung", RUNG_NAMES)
def test_each_rung_has_a_config_inheriting_base(rung):
    path = LADDER_DIR / f"{rung}.yaml"
    raw = yaml.safe_load(path.read_text())
    assert raw["_base_"] == "../base.yaml"
    assert "backbone" not in raw.get("model", {}), "the backbone is set once, in base.yaml"
    assert "seed" not in raw
    cfg = load_config(path)
    assert rung_label(cfg.model) == rung and rung in LADDER.values()


def test_rungs_share_backbone_class_width_seed_and_initial_weights():
    configs = {r: load_config(LADDER_DIR / f"{r}.yaml") for r in RUNG_NAMES}
    settings = {(c.model.backbone.name, c.model.backbone.width, c.model.backbone.weights, c.seed)
                for c in configs.values()}
    assert len(settings) == 1
    small = {r: load_config(LADDER_DIR / f"{r}.yaml", ["model.backbone.width=8"]) for r in RUNG_NAMES}
    backbones = {r: _backbone(build_detector(c, 4)) for r, c in small.items()}
    reference = backbones["faster_rcnn"].state_dict()
    for rung, net in backbones.items():
        assert type(net) is type(backbones["faster_rcnn"]), rung
        state = net.state_dict()
        assert state.keys() == reference.keys(), rung
        assert all(torch.equal(state[k], reference[k]) for k in reference), f"{rung}: different initial weights"


def test_the_parts_make_the_rungs_and_fast_rcnn_differs_from_faster_rcnn_in_its_proposals():
    expected = {"regression": ("whole_image", "global_pool", None), "sliding_window": ("windows", "crop", None),
                "rcnn": ("precomputed", "crop", "selective_search"),
                "fast_rcnn": ("precomputed", "roi", "selective_search"), "faster_rcnn": ("rpn", "roi", None)}
    for rung, (proposals, head, method) in expected.items():
        cfg = load_config(LADDER_DIR / f"{rung}.yaml")
        assert (cfg.model.proposals, cfg.model.region_head) == (proposals, head), rung
        spec = precomputed_spec(cfg)
        assert (spec.method if spec else None) == method, rung
    fast = yaml.safe_load((LADDER_DIR / "fast_rcnn.yaml").read_text())["model"]
    faster = yaml.safe_load((LADDER_DIR / "faster_rcnn.yaml").read_text())["model"]
    assert {k for k in set(fast) | set(faster) if fast.get(k) != faster.get(k)} <= {"proposals", "precomputed",
                                                                                     "rpn", "roi_head"}
    assert fast["region_head"] == faster["region_head"] == "roi"


def test_rcnn_crops_keep_the_papers_proportions():
    """R-CNN warps ~half-image crops to 227 px with 16 px context; ours scale that to 128 px images."""
    crop = load_config(LADDER_DIR / "rcnn.yaml").model.crop
    assert 0.3 <= crop.size / 128 <= 0.6
    assert crop.context_pad / crop.size == pytest.approx(16 / 227, rel=0.05)
    assert (crop.batch_size, crop.positive_fraction, crop.fg_iou_thresh) == (128, 0.25, 0.5)
