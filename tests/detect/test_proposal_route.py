"""The one route from a config to its precomputed proposals: defaults, cache identity, sharding over ranks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from detect.config import load_config
from detect.data.voc import VOCDataset
from detect.proposal_route import image_proposals, precomputed_spec, spec_key, split_proposals
from eval.errors import InputError
from tests.conftest import REPO

LADDER = REPO / "configs" / "ladder"
# Precomputed sliding windows: as cacheable as Selective Search, and fast.
WINDOWS = ["model.proposals=precomputed", "model.region_head=crop", "model.precomputed.method=sliding_window",
           "model.precomputed.params={stride: 32.0}"]


def test_parts_that_make_their_own_proposals_need_none():
    for rung in ("regression", "sliding_window", "faster_rcnn"):
        cfg = load_config(LADDER / f"{rung}.yaml")
        assert precomputed_spec(cfg) is None and spec_key(cfg) is None
        assert image_proposals(cfg, [np.zeros((8, 8, 3), np.uint8)]) == (None, None)


def test_the_methods_own_defaults_fill_the_params_and_rcnn_shares_fast_rcnns_boxes():
    rcnn, fast = (precomputed_spec(load_config(LADDER / f"{r}.yaml")) for r in ("rcnn", "fast_rcnn"))
    # the cache key of the layout before issue 12 (proposals.mode fast, max_side null, min_size 4)
    assert {k: rcnn.params[k] for k in ("mode", "max_side", "min_size", "seed")} == \
        {"mode": "fast", "max_side": None, "min_size": 4, "seed": 0}
    assert rcnn.key == fast.key
    windows = precomputed_spec(load_config(None, WINDOWS))
    assert windows.params == {"scales": [32.0, 64.0, 96.0], "ratios": [0.5, 1.0, 2.0], "stride": 32.0}
    assert windows.cache_for("root") == Path("root/proposals/sliding_window-default")


def test_an_unknown_parameter_is_refused_naming_the_config_key():
    with pytest.raises(InputError, match=r"model.precomputed.params: .*unknown parameter\(s\) \['colour'\]"):
        precomputed_spec(load_config(LADDER / "rcnn.yaml", ["model.precomputed.params={colour: hsv}"]))


def test_cache_and_per_image_routes_give_the_same_boxes(synth_root, tmp_path):
    cfg = load_config(None, [*WINDOWS, f"model.precomputed.cache_dir={tmp_path / 'c'}"])
    voc = VOCDataset(synth_root, "test")
    cached = split_proposals(cfg, voc)
    assert cached.computed == len(voc) and sorted(cached.boxes) == sorted(voc.image_ids)
    boxes, seconds = image_proposals(cfg, [voc[i][0] for i in range(3)])
    for i in range(3):
        np.testing.assert_array_equal(boxes[i], cached.boxes[voc.image_ids[i]])
    assert len(seconds) == 3 and split_proposals(cfg, voc).reused == len(voc)


_SHARDED = """
import json, sys, torch
from detect.config import load_config
from detect.data.voc import VOCDataset
from detect.engine import distributed
from detect.proposal_route import split_proposals
dist = distributed.setup(torch.device("cpu"))
cfg = load_config(None, sys.argv[3:])
found = split_proposals(cfg, VOCDataset(sys.argv[1], "test"), dist=dist)
with open(f"{sys.argv[2]}/rank{dist.rank}.json", "w") as fh:  # one file per rank: their stdout interleaves
    json.dump({"rank": dist.rank, "computed": found.computed, "ids": sorted(found.boxes)}, fh)
"""


def test_under_torchrun_each_rank_computes_every_kth_image(synth_root, tmp_path):
    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists():
        pytest.skip("torchrun not installed next to this interpreter")
    script = tmp_path / "sharded.py"
    script.write_text(_SHARDED)
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    done = subprocess.run([str(torchrun), "--standalone", "--nproc_per_node=2", str(script), str(synth_root),
                           str(tmp_path), *WINDOWS, f"model.precomputed.cache_dir={tmp_path / 'c'}"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    n = len(VOCDataset(synth_root, "test"))
    assert [r["computed"] for r in ranks] == [(n + 1) // 2, n // 2]  # shared, none computed twice
    assert ranks[0]["ids"] == ranks[1]["ids"] and len(ranks[0]["ids"]) == n  # both read the whole split
