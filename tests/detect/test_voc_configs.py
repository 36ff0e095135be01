"""The real-VOC configs (paper settings, for GPU users) are smoke-tested at a tiny size."""

from pathlib import Path

import pytest

from detect.config import load_config
from detect.engine.runlog import read_log
from detect.train import train

REPO = Path(__file__).resolve().parents[2]
TINY = ["model.backbone.weights=null", "data.image_size=64", "data.max_size=64", "model.roi_head.representation_size=32",
        "model.rpn.pre_nms_top_n_train=100", "model.rpn.post_nms_top_n_train=50", "train.iterations=1",
        "train.batch_size=2", "train.warmup_iterations=0", "model.rpn.anchors.sizes=[[16, 32]]"]


@pytest.mark.parametrize("name", sorted(p.name for p in (REPO / "configs" / "voc").glob("*.yaml")))
def test_voc_config_trains_one_step(name, synth_root, tmp_path):
    overrides = list(TINY)
    if "fpn" in name:
        overrides[-1] = "model.rpn.anchors.sizes=[[8], [16], [32], [64], [128]]"
    cfg = load_config(REPO / "configs" / "voc" / name, overrides)
    assert cfg.data.train_split == "trainval" and cfg.model.proposals == "rpn"
    result = train(cfg, tmp_path / "run", data_root=synth_root)
    assert result.model_path.is_file()
    assert read_log(tmp_path / "run" / "log.jsonl")[0]["loss"] > 0
