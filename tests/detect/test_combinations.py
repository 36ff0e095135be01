"""Detectors outside the ladder, composed from a YAML file alone (configs/combinations/)."""

from __future__ import annotations

from pathlib import Path

import pytest

from detect.build import build_detector, rung_label
from detect.compare_rows import describe_rung
from detect.config import load_config
from detect.engine.runlog import read_log
from detect.inference import load_detector, run_detector
from detect.train import train

COMBINATIONS = Path(__file__).resolve().parents[2] / "configs" / "combinations"
SMALL = ["model.backbone.width=8", "train.batch_size=2", "train.iterations=3", "train.warmup_iterations=1",
         "train.checkpoint_every=100", "test.score_thresh=0.0"]


def test_the_combinations_are_neither_ladder_rung():
    labels = {p.stem: rung_label(load_config(p).model) for p in COMBINATIONS.glob("*.yaml")}
    assert labels == {"rpn_crop": "rpn+crop", "windows_roi": "windows+roi"}


def test_rpn_into_the_crop_head_has_two_backbones_with_the_same_start():
    model = build_detector(load_config(COMBINATIONS / "rpn_crop.yaml", ["model.backbone.width=8"]), 3)
    shared, own = model.backbone.state_dict(), model.region_head.backbone.state_dict()
    assert shared.keys() == own.keys() and all((shared[k] == own[k]).all() for k in shared)
    assert describe_rung(load_config(COMBINATIONS / "rpn_crop.yaml"))[0] == "RPN on shared features"


@pytest.mark.parametrize("name", ["rpn_crop", "windows_roi"])
def test_a_combination_trains_and_detects(name, synth_root, tmp_path):
    result = train(load_config(COMBINATIONS / f"{name}.yaml", SMALL), tmp_path / name, data_root=synth_root)
    losses = [r for r in read_log(tmp_path / name / "log.jsonl") if "loss" in r]
    assert len(losses) == 3 and all(r["loss"] > 0 for r in losses)
    if name == "rpn_crop":  # both parts learn: the RPN's losses and the crop head's
        assert {"loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg"} <= set(losses[0])
    model, cfg, names = load_detector(result.model_path)
    from detect.data.voc import VOCDataset

    voc = VOCDataset(synth_root, "test")
    dets, _ = run_detector(model, cfg, [voc[i][0] for i in range(2)])
    assert len(dets) == 2 and all(len(d["scores"]) > 0 for d in dets)
    assert all(0 <= d["labels"].min() and d["labels"].max() < len(names) for d in dets)
