"""``detect`` never writes over the user's images and never takes its own outputs as inputs."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from detect.image_files import ANNOTATED_DIR, check_outputs, collect_images, detect_files
from eval.errors import InputError

CLASSES = ["circle", "square", "triangle", "star"]


@pytest.fixture
def model_file(tmp_path, monkeypatch) -> Path:
    """A stand-in for ``detect.inference``: one box per image, so these tests are about files, not models.

    (tests/detect/test_inference.py runs ``detect_files`` with a real detector.)
    """
    def load_detector(weights, config, device, overrides):
        return None, types.SimpleNamespace(test=types.SimpleNamespace(batch_size=2),
                                     data=types.SimpleNamespace(max_image_pixels=10**8)), CLASSES

    def run_detector(model, cfg, images, score_thresh=None):
        det = {"boxes": np.array([[2.0, 3.0, 40.0, 50.0]]), "scores": np.array([0.9]), "labels": np.array([1])}
        return [det for _ in images], None

    fake = types.ModuleType("detect.inference")
    fake.load_detector, fake.run_detector = load_detector, run_detector
    monkeypatch.setitem(sys.modules, "detect.inference", fake)
    path = tmp_path / "model.pt"
    path.write_bytes(b"not read by the stand-in")
    return path


def _digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _photos(synth_root: Path, folder: Path, n: int = 2) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for src in sorted((synth_root / "JPEGImages").glob("*.jpg"))[:n]:
        (folder / src.name).write_bytes(src.read_bytes())
        out.append(folder / src.name)
    return out


def test_out_dot_beside_the_photo_leaves_it_untouched(tmp_path, model_file, synth_root, monkeypatch):
    """``cd photos && detect coffee.jpg --out .``: the copy goes to ./annotated/, the photo keeps its bytes."""
    photos = tmp_path / "photos"
    (coffee,) = _photos(synth_root, photos, 1)
    before = coffee.read_bytes()
    monkeypatch.chdir(photos)
    result = detect_files([Path(coffee.name)], Path("."), model_file)
    assert coffee.read_bytes() == before
    assert (photos / ANNOTATED_DIR / coffee.name).is_file() and result.image_dir == Path(".") / ANNOTATED_DIR
    assert json.loads((photos / "detections.json").read_text())["images"][0]["file"] == coffee.name


def test_out_at_the_dataset_root_leaves_the_dataset_untouched(tmp_path, model_file, synth_root):
    """``detect X/JPEGImages --out X`` used to draw into every image of the dataset."""
    root = tmp_path / "X"
    _photos(synth_root, root / "JPEGImages", 3)
    before = _digests(root / "JPEGImages")
    result = detect_files([root / "JPEGImages"], root, model_file)
    assert result.images == 3
    assert _digests(root / "JPEGImages") == before
    assert sorted(p.name for p in (root / ANNOTATED_DIR / "JPEGImages").iterdir()) == sorted(before)


def test_rerun_with_out_inside_the_input_folder_does_not_nest(tmp_path, model_file, synth_root):
    photos = tmp_path / "photos"
    _photos(synth_root, photos, 2)
    first = detect_files([photos], photos / "det", model_file)
    second = detect_files([photos], photos / "det", model_file)
    assert first.images == second.images == 2
    written = sorted(str(p.relative_to(photos / "det")) for p in (photos / "det").rglob("*") if p.is_file())
    assert written == ["annotated/photos/" + n for n in sorted(os.listdir(photos)) if n.endswith(".jpg")] + [
        "detections.json"]
    # Another --out inside the folder: the first run's annotated/ (beside its detections.json) is still skipped.
    assert detect_files([photos], photos / "det2", model_file).images == 2


def test_an_output_that_would_replace_an_input_is_refused_before_any_work(tmp_path, synth_root, monkeypatch):
    out = tmp_path / "out"
    (old,) = _photos(synth_root, out / ANNOTATED_DIR, 1)  # a previous run's copy, passed back in as input
    files = collect_images([old], out)
    with pytest.raises(InputError, match="would write .* over it") as err:
        check_outputs(files, out)
    assert err.value.path == str(old)
    # The same file under another spelling: relative to the working folder, through "..".
    monkeypatch.chdir(out / ANNOTATED_DIR)
    with pytest.raises(InputError):
        check_outputs(collect_images([Path(old.name)], Path("../../out")), out)
    # The JSON cannot land on an input either, and --out must be a folder.
    (tmp_path / "o2").mkdir()
    (tmp_path / "o2" / "detections.json").write_bytes(old.read_bytes())
    with pytest.raises(InputError):
        check_outputs(collect_images([tmp_path / "o2" / "detections.json"], tmp_path / "o2"), tmp_path / "o2")
    with pytest.raises(InputError, match="must be a folder"):
        check_outputs(files, old)
    check_outputs(collect_images([old], tmp_path / "elsewhere"), tmp_path / "elsewhere")  # no clash: passes


def test_walk_skips_this_runs_annotated_folder_and_earlier_runs_but_not_other_folders(tmp_path):
    for rel in ("in/a.jpg", "in/annotated/own.jpg", "in/old/annotated/prev.jpg", "in/old/detections.json",
                "in/keep/annotated/user.jpg", "in/out/annotated/x.png"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    got = [str(rel) for _, rel in collect_images([tmp_path / "in"], tmp_path / "in" / "out")]
    # in/annotated has no detections.json beside it, so it is a user's folder that happens to be named so.
    assert got == ["in/a.jpg", "in/annotated/own.jpg", "in/keep/annotated/user.jpg"]
    got = [str(rel) for _, rel in collect_images([tmp_path / "in"], tmp_path / "in")]
    assert "in/annotated/own.jpg" not in got and "in/out/annotated/x.png" in got


def test_cli_refusal_is_one_line_exit_2_and_success_says_where(cli, tmp_path, model_file, synth_root, capsys):
    from detect.cli import main

    out = tmp_path / "out"
    (old,) = _photos(synth_root, out / ANNOTATED_DIR, 1)
    before = old.read_bytes()
    res = cli("detect", "--weights", model_file, old, "--out", out)  # refused before the weights are read
    assert res.returncode == 2 and old.read_bytes() == before
    assert res.stderr.strip().splitlines() == [res.stderr.strip()] and str(old) in res.stderr
    assert main(["detect", "--weights", str(model_file), str(old), "--out", str(tmp_path / "new")]) == 0
    printed = capsys.readouterr().out
    assert str(tmp_path / "new" / "detections.json") in printed
    assert f"annotated images in {tmp_path / 'new' / ANNOTATED_DIR}" in printed


def test_a_decompression_bomb_is_one_line_and_the_other_images_are_detected(tmp_path, model_file, synth_root):
    from tests.proposals.image_util import png_header_only

    photos = tmp_path / "photos"
    _photos(synth_root, photos, 2)
    (photos / "bomb.png").write_bytes(png_header_only(100_000, 100_000))  # 69 bytes claiming 10^10 pixels
    said = []
    result = detect_files([photos], tmp_path / "out", model_file, say=said.append)
    assert result.images == 2 and len(result.failed) == 1
    assert said == result.failed and "bomb.png" in said[0] and "pixel limit" in said[0] and "\n" not in said[0]
