"""configs/regression/{l2,smooth_l1,bins}.yaml: each loads and trains with the training engine, then detects."""

from __future__ import annotations

import math

import pytest
import torch

from detect.config import load_config
from detect.data.voc import VOCDataset
from detect.inference import load_detector, run_detector
from detect.train import train
from tests.detect.ladder_util import REPO

CONFIGS = sorted((REPO / "configs" / "regression").glob("*.yaml"))


def test_the_three_box_losses_have_a_config_each():
    assert {p.stem for p in CONFIGS} == {"l2", "smooth_l1", "bins"}
    for path in CONFIGS:
        assert load_config(path).model.global_pool.box_loss == path.stem


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_regression_config_trains_a_few_iterations_and_detects_one_box(path, synth_root, tmp_path):
    config = load_config(path, ["model.backbone.width=8", "train.batch_size=4", "train.iterations=3",
                                "train.warmup_iterations=1", "test.score_thresh=0.0"])
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = train(config, tmp_path / path.stem, data_root=synth_root)
    finally:
        torch.set_num_threads(saved)
    assert result.model_path is not None and all(math.isfinite(v) for v in result.final_losses.values())
    model, cfg, _ = load_detector(result.model_path)
    assert cfg.model.global_pool.box_loss == path.stem and cfg.model.global_pool.train_view == "window"
    voc = VOCDataset(synth_root, "test", class_names=cfg.classes)
    dets, _ = run_detector(model, cfg, [voc[i][0] for i in range(2)])
    for d, i in zip(dets, range(2)):
        h, w = voc[i][0].shape[:2]
        assert len(d["boxes"]) == 1  # one box per image
        x1, y1, x2, y2 = d["boxes"][0]
        assert 0 <= x1 <= x2 <= w and 0 <= y1 <= y2 <= h
