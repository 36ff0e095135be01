"""The exit-code contract (issue 11, items 7-9): bad numbers, devices, outputs, weights and resumes exit 2 with
one line naming what is wrong, before any work; nothing that used to pass silently does so any more."""

from __future__ import annotations

import errno
import json
import os
import pickle
import shutil
import warnings
from pathlib import Path

import pytest

from detect.cli import main

REPO = Path(__file__).resolve().parents[1]
FRCNN = str(REPO / "configs" / "ladder" / "faster_rcnn.yaml")
REGRESSION = str(REPO / "configs" / "ladder" / "regression.yaml")
TINY = ["--set", "train.iterations=2", "--set", "train.batch_size=2", "--set", "train.warmup_iterations=1",
        "--set", "train.checkpoint_every=1"]


def _exit_2(capfd, argv) -> str:
    """Run ``detladder ARGV`` in this process; assert exit 2 with one line and no traceback; return the line."""
    code = main([str(a) for a in argv])
    err = capfd.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, (code, err)
    assert lines[0].startswith("detladder: error: ")
    return lines[0]


# --------------------------------------------------------------------------- item 7: numbers in range


@pytest.mark.parametrize("override, message", [
    ("train.iterations=0", "--set train.iterations: train.iterations must be at least 1, got 0"),
    ("train.batch_size=0", "--set train.batch_size: train.batch_size must be at least 1, got 0"),
    ("train.lr=-1", "--set train.lr: train.lr must be greater than 0, got -1.0"),
    ("data.image_size=0", "--set data.image_size: data.image_size must be at least 1, got 0"),
    ("train.checkpoint_every=0", "--set train.checkpoint_every: train.checkpoint_every must be at least 1, got 0"),
])
def test_train_refuses_out_of_range_numbers_before_any_work(capfd, tmp_path, synth_root, override, message):
    line = _exit_2(capfd, ["train", "--config", FRCNN, "--data", synth_root, "--out", tmp_path / "run",
                           "--set", override])
    assert message in line
    assert not (tmp_path / "run").exists()


def test_a_range_in_a_config_file_names_the_file(capfd, tmp_path, synth_root):
    config = tmp_path / "bad.yaml"
    config.write_text(f"_base_: {FRCNN}\ntest: {{score_thresh: 1.5}}\n")
    line = _exit_2(capfd, ["train", "--config", config, "--data", synth_root, "--out", tmp_path / "run"])
    assert f"{config}: test.score_thresh must be between 0 and 1, got 1.5" in line


def test_detect_score_thresh_obeys_the_range_of_test_score_thresh(capfd, tmp_path, synth_root):
    line = _exit_2(capfd, ["detect", "--weights", tmp_path / "never-read.pt", synth_root / "JPEGImages",
                           "--out", tmp_path / "det", "--score-thresh", "2"])
    assert "--score-thresh: test.score_thresh must be between 0 and 1, got 2.0" in line
    assert not (tmp_path / "det").exists()


@pytest.mark.parametrize("method, option, value, message", [
    ("sliding_window", "--stride", "0", "--stride: every value must be a finite number > 0"),
    ("sliding_window", "--scales", "32,-5", "--scales: every value must be a finite number > 0"),
    ("sliding_window", "--ratios", "0,1", "--ratios: every value must be a finite number > 0"),
    ("selective_search", "--max-side", "0", "--max-side must be at least 1, got 0"),
    ("selective_search", "--min-size", "-1", "--min-size must be at least 0, got -1.0"),
    ("selective_search", "--seed", "-1", "--seed must be at least 0, got -1"),
])
def test_proposal_options_out_of_range_exit_2_before_any_work(capfd, tmp_path, synth_root, method, option, value,
                                                               message):
    line = _exit_2(capfd, ["proposals", "run", "--method", method, "--data", synth_root, "--split", "test",
                           "--out", tmp_path / "cache", option, value])
    assert message in line and not (tmp_path / "cache").exists()


def test_synth_refuses_a_negative_seed(capfd, tmp_path):
    line = _exit_2(capfd, ["data", "synth", "--out", tmp_path / "d", "--train", "1", "--test", "1", "--seed", "-1"])
    assert "--seed" in line and not (tmp_path / "d").exists()


def test_an_empty_config_file_does_not_train_on_defaults(capfd, tmp_path, synth_root):
    config = tmp_path / "empty.yaml"
    config.write_text("# to do\n")
    line = _exit_2(capfd, ["train", "--config", config, "--data", synth_root, "--out", tmp_path / "run"])
    assert f"{config}: the config file is empty, so it chooses no detector" in line


# --------------------------------------------------------------------------- item 8: exit 2, not a raw exception


_DEVICES = [("bogus", "'bogus' is not a device"), ("cuda:99", "'cuda:99'")]


@pytest.mark.parametrize("device, message", _DEVICES + [pytest.param(
    "cuda", "'cuda': no CUDA GPU is usable", marks=pytest.mark.skipif(
        __import__("torch").cuda.is_available(), reason="this machine has a GPU"))])
def test_a_device_this_machine_lacks_is_one_line(capfd, tmp_path, synth_root, device, message):
    line = _exit_2(capfd, ["train", "--config", FRCNN, "--data", synth_root, "--out", tmp_path / "run",
                           "--device", device])
    assert f"--device: {message}" in line


@pytest.fixture
def locked(tmp_path, monkeypatch):
    """A folder no file can be created in (permissions; as root, where those do not bind, os.open refuses)."""
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    real_open = os.open

    def refusing_open(path, flags, *args, **kwargs):
        if str(path).startswith(str(folder)) and flags & os.O_CREAT:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, flags, *args, **kwargs)

    if os.geteuid() == 0:
        monkeypatch.setattr(os, "open", refusing_open)
    yield folder
    folder.chmod(0o755)


def _metrics_fixture(tmp_path: Path) -> Path:
    source = REPO / "tests" / "data" / "report"
    shutil.copytree(source, tmp_path / "report")
    return tmp_path / "report" / "metrics.json"


def test_every_command_checks_its_output_is_writable_before_the_work(capfd, tmp_path, synth_root, locked):
    out = locked / "sub"
    dets = tmp_path / "dets"
    dets.mkdir()
    commands = {
        "train": ["train", "--config", FRCNN, "--data", synth_root, "--out", out],
        "detect": ["detect", "--weights", tmp_path / "never-read.pt", synth_root / "JPEGImages", "--out", out],
        "eval": ["eval", "--gt", synth_root, "--dets", dets, "--protocol", "voc12", "--json", out / "ap.json"],
        "compare": ["compare", "--data", synth_root, "--configs", REGRESSION, "--out", out],
        "report": ["report", _metrics_fixture(tmp_path), "--out", out],
        "data synth": ["data", "synth", "--out", out, "--train", "2", "--test", "1"],
        "proposals run": ["proposals", "run", "--method", "sliding_window", "--data", synth_root, "--split", "test",
                          "--out", out],
        "proposals eval": ["proposals", "eval", "--method", "sliding_window", "--data", synth_root, "--split",
                           "test", "--json", out / "r.json"],
    }
    for name, argv in commands.items():
        line = _exit_2(capfd, argv)
        assert str(out) in line and "cannot write here" in line and "Permission denied" in line, (name, line)
    assert list(locked.iterdir()) == []


def test_an_output_path_that_is_a_file_or_folder_of_the_wrong_kind(capfd, tmp_path, synth_root):
    a_file = tmp_path / "f.txt"
    a_file.write_text("x")
    line = _exit_2(capfd, ["report", _metrics_fixture(tmp_path), "--out", a_file])
    assert "exists and is not a folder; choose another --out" in line
    line = _exit_2(capfd, ["eval", "--gt", synth_root, "--dets", tmp_path, "--protocol", "voc12", "--json", tmp_path])
    assert "is a folder, not a file name; choose another --json" in line


def test_compare_with_a_missing_example_image_names_it(capfd, tmp_path, synth_root):
    root = tmp_path / "voc"
    shutil.copytree(synth_root, root)
    first = (root / "ImageSets" / "Main" / "test.txt").read_text().split()[0]
    (root / "JPEGImages" / f"{first}.jpg").unlink()
    line = _exit_2(capfd, ["compare", "--data", root, "--configs", REGRESSION, "--out", tmp_path / "cmp"])
    assert f"{first}.jpg: image file not found" in line


@pytest.mark.parametrize("content, kind", [
    (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(100), "it is a JPEG image, not a PyTorch checkpoint"),
    (b"\x89PNG\r\n\x1a\n" + bytes(40), "it is a PNG image, not a PyTorch checkpoint"),
    (b"model:\n  proposals: rpn\n", "it is a text file, not a PyTorch checkpoint"),
    (pickle.dumps({"state_dict": {"w": [1.0]}}, protocol=4), "it is a plain pickle file, not a PyTorch checkpoint; "
                                                              "plain pickles are never loaded"),
    (b"", "it is an empty file"),
])
def test_weights_that_are_no_checkpoint_are_named_for_what_they_are_without_warnings(tmp_path, content, kind):
    from detect.engine.checkpoint import load_safely
    from eval.errors import InputError

    path = tmp_path / "weights.pt"
    path.write_bytes(content)
    with warnings.catch_warnings(record=True) as caught, pytest.raises(InputError) as info:
        warnings.simplefilter("always")
        load_safely(path)
    assert str(info.value) == f"{path}: refused to load checkpoint: {kind}" or kind in str(info.value)
    assert "would run code" not in str(info.value) and caught == []


def test_a_plain_pickle_as_weights_is_one_line_on_the_command_line(capfd, tmp_path, synth_root):
    weights = tmp_path / "w.pkl"
    weights.write_bytes(pickle.dumps({"a": 1}, protocol=4))
    line = _exit_2(capfd, ["detect", "--weights", weights, synth_root / "JPEGImages", "--out", tmp_path / "det"])
    assert "plain pickle file" in line


def test_torch_checkpoints_in_both_formats_still_load(tmp_path):
    import torch

    from detect.engine.checkpoint import load_safely

    for name, zipped in (("new.pt", True), ("legacy.pt", False)):
        torch.save({"w": torch.ones(2)}, tmp_path / name, _use_new_zipfile_serialization=zipped)
        assert torch.equal(load_safely(tmp_path / name)["w"], torch.ones(2))


# --------------------------------------------------------------------------- item 9: nothing silent


def test_resume_refuses_another_config_and_says_where_it_resumed(capfd, tmp_path, synth_root):
    run = tmp_path / "run"
    base = ["train", "--data", synth_root, "--out", run, *TINY]
    assert main([str(a) for a in ["train", "--config", FRCNN, "--data", synth_root, "--out", run, *TINY]]) == 0
    capfd.readouterr()
    first = (run / "log.jsonl").read_text()

    line = _exit_2(capfd, [*base, "--config", FRCNN, "--resume", "--set", "train.lr=0.5"])
    assert f"{run / 'checkpoint.pt'}: the config differs from the run's in 1 key(s): train.lr: " in line
    assert "-> 0.5" in line and "--allow-config-change" in line

    line = _exit_2(capfd, [*base, "--config", REGRESSION, "--resume"])
    assert "this run was made with a faster_rcnn config, not this regression one" in line

    assert main([str(a) for a in [*base, "--config", REGRESSION, "--resume", "--allow-config-change"]]) == 2
    note, line = capfd.readouterr().err.strip().splitlines()
    assert note.startswith("detladder: resuming with a changed config (") and "data.image_size: 128 -> 64" in note
    assert "its weights do not fit the regression model" in line and "made with a faster_rcnn config" in line
    assert "missing (first: " in line and "unexpected (first: " in line

    assert main([str(a) for a in [*base, "--config", FRCNN, "--resume", "--allow-config-change",
                                  "--set", "train.iterations=3"]]) == 0
    err = capfd.readouterr().err
    assert "resuming with a changed config (1 key(s)): train.iterations: 2 -> 3" in err
    assert "resumed from iteration 2 of 3" in err
    assert (run / "log.jsonl").read_text().startswith(first)
    assert json.loads((run / "log.jsonl").read_text().splitlines()[-1])["iteration"] == 3


def test_resume_with_the_same_config_says_so_and_bookkeeping_keys_may_change(capfd, tmp_path, synth_root):
    run = tmp_path / "run"
    argv = ["train", "--config", FRCNN, "--data", synth_root, "--out", run, *TINY]
    assert main([str(a) for a in argv]) == 0
    capfd.readouterr()
    assert main([str(a) for a in [*argv, "--resume", "--set", "train.log_every=1", "--set", "data.workers=0"]]) == 0
    assert "resumed from iteration 2 of 2" in capfd.readouterr().err


def test_eval_of_a_dets_folder_for_another_split_exits_2(capfd, tmp_path, synth_root):
    dets = tmp_path / "dets"
    dets.mkdir()
    (dets / "comp4_det_train_circle.txt").write_text("")
    line = _exit_2(capfd, ["eval", "--gt", synth_root, "--dets", dets, "--split", "test", "--protocol", "voc12"])
    assert "only for split(s) 'train'" in line


def test_report_refuses_a_map_above_one(capfd, tmp_path):
    metrics = _metrics_fixture(tmp_path)
    payload = json.loads(metrics.read_text())
    payload["variants"][0]["mAP"] = 5.0
    metrics.write_text(json.dumps(payload))
    line = _exit_2(capfd, ["report", metrics, "--out", tmp_path / "out"])
    assert "key variants[0].mAP: expected a number from 0 to 1 or null, got 5.0" in line
    assert not (tmp_path / "out" / "report.html").exists()
