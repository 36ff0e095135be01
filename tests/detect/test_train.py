"""The training engine: learning, determinism, kill-and-resume, run files, skipped entries."""

import shutil

import pytest
import torch

from detect.config import load_config
from detect.engine.checkpoint import load_safely
from detect.engine.runlog import read_log
from detect.engine.schedule import lr_factor
from detect.train import train
from eval.errors import InputError

FAST = ["train.warmup_iterations=2", "train.batch_size=4", "model.rpn.pre_nms_top_n_train=300",
        "model.rpn.post_nms_top_n_train=150"]


def _cfg(*overrides):
    return load_config("configs/ladder/faster_rcnn.yaml", FAST + list(overrides))


def test_training_lowers_the_loss_and_writes_run_files(synth_root, tmp_path):
    result = train(_cfg("train.iterations=10", "train.checkpoint_every=5"), tmp_path / "run", data_root=synth_root)
    losses = [r["loss"] for r in read_log(tmp_path / "run" / "log.jsonl") if "loss" in r]
    assert len(losses) == 10
    assert sum(losses[-3:]) / 3 < 0.7 * sum(losses[:3]) / 3
    model = load_safely(result.model_path)
    assert set(model) == {"state_dict", "config", "class_names", "rung"}
    assert model["rung"] == "faster_rcnn" and model["class_names"] == ["circle", "square", "triangle", "star"]
    assert model["config"]["data"]["root"] == str(synth_root)
    ckpt = load_safely(result.checkpoint_path)
    assert ckpt["iteration"] == 10 and {"model", "optimizer", "scheduler", "rng", "config"} <= set(ckpt)
    assert result.iterations == 10 and result.train_seconds > 0 and set(result.final_losses) >= {"loss", "lr"}


def test_killed_and_resumed_run_equals_uninterrupted_run(synth_root, tmp_path):
    cfg = _cfg("train.iterations=4", "train.checkpoint_every=2")
    full = train(cfg, tmp_path / "full", data_root=synth_root)
    crashed = train(cfg, tmp_path / "resumed", data_root=synth_root, stop_at=3)  # last checkpoint: iteration 2
    assert crashed.model_path is None and not (tmp_path / "resumed" / "model.pt").exists()
    assert len(read_log(tmp_path / "resumed" / "log.jsonl")) == 3
    resumed = train(cfg, tmp_path / "resumed", data_root=synth_root, resume=True)
    a = load_safely(full.model_path)["state_dict"]
    b = load_safely(resumed.model_path)["state_dict"]
    assert list(a) == list(b)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    log_a = read_log(tmp_path / "full" / "log.jsonl")
    log_b = read_log(tmp_path / "resumed" / "log.jsonl")
    assert [r["iteration"] for r in log_b] == [1, 2, 3, 4]  # the lost iteration 3 is not logged twice
    for ra, rb in zip(log_a, log_b):
        assert {k: v for k, v in ra.items() if k.startswith("loss") or k == "lr"} == \
               {k: v for k, v in rb.items() if k.startswith("loss") or k == "lr"}


def test_resume_rules(synth_root, tmp_path):
    cfg = _cfg("train.iterations=1")
    with pytest.raises(InputError, match="nothing to resume"):
        train(cfg, tmp_path / "run", data_root=synth_root, resume=True)
    train(cfg, tmp_path / "run", data_root=synth_root)
    with pytest.raises(InputError, match="--resume"):
        train(cfg, tmp_path / "run", data_root=synth_root)


def test_skipped_entries_are_reported(synth_root, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(synth_root, root)
    first = (root / "ImageSets" / "Main" / "train.txt").read_text().split()[0]
    (root / "Annotations" / f"{first}.xml").write_text("<annotation><object>")
    notes = []
    result = train(_cfg("train.iterations=1"), tmp_path / "run", data_root=root, say=notes.append)
    assert len(result.skipped) == 1 and f"{first}.xml" in result.skipped[0]
    assert len(notes) == 1 and notes[0].startswith("skipped 1 image: ") and f"{first}.xml" in notes[0]
    assert read_log(tmp_path / "run" / "log.jsonl")[0]["event"] == "skipped"


def test_validation_is_logged(synth_root, tmp_path):
    result = train(_cfg("train.iterations=2", "train.val_every=2"), tmp_path / "run", data_root=synth_root)
    val = [r for r in read_log(tmp_path / "run" / "log.jsonl") if r.get("event") == "validation"]
    assert len(val) == 1 and val[0]["iteration"] == 2 and 0.0 <= val[0]["mAP"] <= 1.0
    assert result.val_map == val[0]["mAP"]


def test_lr_schedules():
    kw = dict(iterations=100, warmup_iterations=10, warmup_factor=0.0)
    assert lr_factor(0, schedule="cosine", **kw) == 0.0
    assert lr_factor(5, schedule="constant", **kw) == pytest.approx(0.5)
    assert lr_factor(10, schedule="cosine", **kw) == pytest.approx(1.0)
    assert lr_factor(55, schedule="cosine", **kw) == pytest.approx(0.5)
    assert lr_factor(100, schedule="cosine", **kw) == pytest.approx(0.0)
    assert lr_factor(59, schedule="step", steps=(60, 80), gamma=0.1, **kw) == pytest.approx(1.0)
    assert lr_factor(85, schedule="step", steps=(60, 80), gamma=0.1, **kw) == pytest.approx(0.01)


def _break_images(root, count: int) -> list[str]:
    """Truncate the JPEGs of the first ``count`` training images (their headers stay readable)."""
    ids = (root / "ImageSets" / "Main" / "train.txt").read_text().split()[:count]
    for image_id in ids:
        path = root / "JPEGImages" / f"{image_id}.jpg"
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    return ids


def test_missing_images_and_decompression_bombs_are_skipped_before_training(synth_root, tmp_path):
    from tests.proposals.image_util import png_header_only

    root = tmp_path / "data"
    shutil.copytree(synth_root, root)
    ids = (root / "ImageSets" / "Main" / "train.txt").read_text().split()
    (root / "JPEGImages" / f"{ids[0]}.jpg").unlink()
    (root / "JPEGImages" / f"{ids[1]}.jpg").write_bytes(png_header_only(100_000, 100_000))  # 69 bytes
    notes = []
    result = train(_cfg("train.iterations=2"), tmp_path / "run", data_root=root, say=notes.append)
    assert result.model_path is not None  # training did not stop
    assert len(result.skipped) == 2
    assert "image file not found" in result.skipped[0] and "pixel limit" in result.skipped[1]
    assert notes[0].startswith("skipped 2 images: ")


def test_an_image_that_fails_to_decode_mid_run_is_skipped_logged_and_resumes_exactly(synth_root, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(synth_root, root)
    broken = _break_images(root, 2)
    cfg = _cfg("train.iterations=6", "train.checkpoint_every=2")
    notes = []
    full = train(cfg, tmp_path / "full", data_root=root, say=notes.append)
    assert full.model_path is not None and full.iterations == 6
    assert sorted(s.split(":")[0].rsplit("/", 1)[-1] for s in full.skipped) == sorted(f"{i}.jpg" for i in broken)
    assert len(notes) == 2 and all("could not be decoded" in n for n in notes)  # once per file
    events = [r for r in read_log(tmp_path / "full" / "log.jsonl") if r.get("event") == "skipped"]
    assert events and all(r["iteration"] >= 1 and "corrupt image" in r["files"][0] for r in events)
    train(cfg, tmp_path / "resumed", data_root=root, stop_at=3)
    resumed = train(cfg, tmp_path / "resumed", data_root=root, resume=True)
    a, b = load_safely(full.model_path)["state_dict"], load_safely(resumed.model_path)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    strip = lambda log: [{k: v for k, v in r.items() if k not in ("seconds", "images_per_s")} for r in log]  # noqa: E731
    assert strip(read_log(tmp_path / "full" / "log.jsonl")) == strip(read_log(tmp_path / "resumed" / "log.jsonl"))
