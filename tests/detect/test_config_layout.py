"""Configs in the layout before issue 12 (``model.rung`` + a top-level ``proposals`` section) still load."""

from __future__ import annotations

from detect.config import config_from_tree, config_to_dict, load_config
from detect.config_layout import upgrade_rung_layout
from detect.proposal_route import precomputed_spec
from tests.conftest import REPO

LADDER = REPO / "configs" / "ladder"

# What model.pt stored for these rungs before issue 12 (config_to_dict of the old Config, the parts that moved).
OLD_PROPOSALS = {"method": "selective_search", "mode": "fast", "cache_dir": None, "compute": True,
                 "max_side": None, "min_size": 4, "top_n_train": 2000, "top_n_test": 2000,
                 "scales": [16.0, 32.0, 64.0], "ratios": [0.5, 1.0, 2.0], "stride": 8.0}


def _old(rung: str, **proposals) -> dict:
    new = config_to_dict(load_config(LADDER / f"{rung}.yaml"))
    model = {k: v for k, v in new["model"].items()
             if k not in ("proposals", "region_head", "precomputed", "windows", "global_pool")}
    model["rung"] = rung
    if rung == "regression":
        model["regression"] = new["model"]["global_pool"]
    return {**new, "model": model, "proposals": {**OLD_PROPOSALS, **proposals}}


SECTION = {"whole_image": None, "rpn": "rpn", "precomputed": "precomputed", "windows": "windows"}


def _same_detector(a, b) -> bool:
    """Equal parts, equal sections for the parts used, equal everything outside ``model``."""
    parts = (a.model.proposals, a.model.region_head)
    if parts != (b.model.proposals, b.model.region_head) or (a.train, a.test, a.data) != (b.train, b.test, b.data):
        return False
    heads = {"roi": "roi_head", "crop": "crop", "global_pool": "global_pool"}
    used = [SECTION[parts[0]], heads[parts[1]], "backbone"]
    return all(getattr(a.model, k) == getattr(b.model, k) for k in used if k)


def test_an_old_stored_config_upgrades_to_the_ladder_configs_parts():
    for rung in ("regression", "rcnn", "fast_rcnn", "faster_rcnn"):
        old = config_from_tree(_old(rung))
        new = load_config(LADDER / f"{rung}.yaml")
        if rung in ("rcnn", "fast_rcnn"):  # the old section's min_size default is now stated in the YAML
            assert precomputed_spec(old).key == precomputed_spec(new).key
            old.model.precomputed.params = new.model.precomputed.params
        assert _same_detector(old, new), rung
    windows = {"method": "sliding_window", "scales": [16.0, 32.0, 56.0], "stride": 12.0}
    assert _same_detector(config_from_tree(_old("sliding_window", **windows)),
                          load_config(LADDER / "sliding_window.yaml"))


def test_old_and_new_layouts_read_the_same_proposal_cache():
    old, new = config_from_tree(_old("rcnn")), load_config(LADDER / "rcnn.yaml")
    assert precomputed_spec(old).key == precomputed_spec(new).key


def test_old_override_keys_still_apply_and_new_trees_pass_unchanged():
    cfg = load_config(LADDER / "rcnn.yaml", ["proposals.top_n_test=300", "proposals.mode=quality"])
    assert cfg.model.precomputed.top_n_test == 300 and cfg.model.precomputed.params["mode"] == "quality"
    tree = {"model": {"proposals": "rpn"}}
    assert upgrade_rung_layout(tree) is tree


def test_old_sliding_window_weights_without_an_svm_stage_load():
    from detect.build import build_detector

    model = build_detector(load_config(LADDER / "sliding_window.yaml", ["model.backbone.width=8"]), 3)
    old_state = {k: v for k, v in model.state_dict().items() if ".svm." not in k}
    assert len(old_state) < len(model.state_dict())
    fresh = build_detector(load_config(LADDER / "sliding_window.yaml", ["model.backbone.width=8"]), 3)
    fresh.load_state_dict(old_state)  # strict: the missing stage loads as an unfitted one
    assert not bool(fresh.region_head.svm.fitted)
