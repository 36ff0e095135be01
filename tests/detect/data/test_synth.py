"""The synthetic VOC dataset: deterministic, in the real VOC layout, and a fair detection problem."""

from __future__ import annotations

import hashlib
import json

import cv2
import numpy as np
import pytest

from detect.data.synth import (
    DIFFICULT_SIDE, SHAPES, SYNTH_STAMP, make_synthetic_voc, read_synth_params, render_image, synth_params,
)
from detect.data.voc import VOCDataset
from eval.errors import InputError


def _tree_digest(root):
    digest = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digest


def test_same_seed_gives_byte_identical_files_and_another_seed_does_not(tmp_path):
    a = make_synthetic_voc(tmp_path / "a", train=6, test=3, seed=7)
    b = make_synthetic_voc(tmp_path / "b", train=6, test=3, seed=7)
    c = make_synthetic_voc(tmp_path / "c", train=6, test=3, seed=8)
    assert _tree_digest(a) == _tree_digest(b)
    assert _tree_digest(a) != _tree_digest(c)


def test_layout_is_voc_and_reads_back_through_the_voc_reader(synth_root):
    for split, count in (("train", 16), ("trainval", 16), ("test", 8)):
        ds = VOCDataset(synth_root, split, on_error="raise", check_images=True)
        assert len(ds) == count and ds.problems == []
    assert ds.class_names == SHAPES
    image, ann = ds[0]
    assert image.dtype == np.uint8 and image.shape == (128, 128, 3)
    assert (synth_root / "JPEGImages" / f"{ann.image_id}.jpg").read_bytes()[:2] == b"\xff\xd8"


def test_boxes_round_trip_through_the_xml(tmp_path):
    root = make_synthetic_voc(tmp_path, train=4, test=0, seed=3)
    ds = VOCDataset(root, "train", on_error="raise")
    for index, ann in enumerate(ds.annotations):
        _, objects = render_image(np.random.default_rng([3, index]), 128)
        np.testing.assert_array_equal(ann.boxes, np.array([o.box for o in objects], np.float64).reshape(-1, 4))
        assert ann.difficult.tolist() == [o.difficult for o in objects]


def test_content_objects_inside_counts_sizes_and_difficult_rule(tmp_path):
    size = 128
    per_image, labels, sides, difficult = [], [], [], []
    for i in range(300):
        _, objects = render_image(np.random.default_rng([11, i]), size)
        per_image.append(len(objects))
        for o in objects:
            x1, y1, x2, y2 = o.box
            assert 0 <= x1 < x2 <= size and 0 <= y1 < y2 <= size
            side = np.sqrt((x2 - x1) * (y2 - y1))
            labels.append(o.label)
            sides.append(side)
            difficult.append(o.difficult)
            if side < DIFFICULT_SIDE * size:
                assert o.difficult, "tiny objects must be marked difficult"
    assert 1 <= min(per_image) and max(per_image) <= 6
    sides = np.array(sides)
    assert sides.max() >= 0.45 * size and np.percentile(sides, 5) <= 0.12 * size
    # Every class appears about equally often (each 25% +- 5 points over ~1000 objects).
    shares = np.array([labels.count(s) for s in SHAPES]) / len(labels)
    assert np.all(np.abs(shares - 1 / len(SHAPES)) < 0.05), shares
    # Some objects are difficult (tiny or mostly hidden), most are not.
    assert 0.03 < np.mean(difficult) < 0.3


def test_colour_does_not_give_the_class_away():
    """Each class is drawn in every hue: its objects' hues fall in all six 60-degree sextants."""
    hues = {s: set() for s in SHAPES}
    for i in range(200):
        image, objects = render_image(np.random.default_rng([5, i]), 128)
        hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
        for o in objects:
            x1, y1, x2, y2 = o.box
            if o.difficult:
                continue
            cx, cy = (x1 + x2) // 2, (y1 + y2) // 2
            h, s, _ = hsv[cy, cx]
            if s > 80:
                hues[o.label].add(int(h) * 2 // 60)
    for shape, sextants in hues.items():
        assert len(sextants) >= 5, (shape, sextants)


@pytest.mark.parametrize("kwargs", [dict(train=0, test=0), dict(image_size=16)])
def test_bad_arguments_are_refused(tmp_path, kwargs):
    with pytest.raises(ValueError):
        make_synthetic_voc(tmp_path, **kwargs)


def test_a_users_folder_is_refused_and_force_replaces_it_whole(tmp_path):
    voc = tmp_path / "VOC2007"
    for rel, text in (("Annotations/000001.xml", "<annotation/>"), ("classes.txt", "cat\n"),
                      ("ImageSets/Main/train.txt", "000001\n"), ("JPEGImages/000001.jpg", "photo")):
        (voc / rel).parent.mkdir(parents=True, exist_ok=True)
        (voc / rel).write_text(text)
    before = _tree_digest(voc)
    with pytest.raises(InputError, match="not a synth dataset.*--force") as err:
        make_synthetic_voc(voc, train=3, test=1)
    assert err.value.path == str(voc) and _tree_digest(voc) == before
    make_synthetic_voc(voc, train=3, test=1, force=True)
    # Nothing of the old folder is left, not even files the new one has no counterpart for.
    assert _tree_digest(voc) == _tree_digest(make_synthetic_voc(tmp_path / "fresh", train=3, test=1))
    assert not (voc / "Annotations" / "000001.xml").read_text().startswith("<annotation/>")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["VOC2007", "fresh"]  # no temporary folder left


def test_same_parameters_write_nothing_and_other_parameters_are_refused(tmp_path):
    root = make_synthetic_voc(tmp_path / "d", train=3, test=1, seed=2)
    assert json.loads((root / SYNTH_STAMP).read_text()) == synth_params(3, 1, 2, 128)
    mtimes = {p: p.stat().st_mtime_ns for p in root.rglob("*")}
    assert make_synthetic_voc(root, train=3, test=1, seed=2) == root
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*")} == mtimes
    with pytest.raises(InputError, match="other parameters .*seed=2"):
        make_synthetic_voc(root, train=3, test=1, seed=5)
    make_synthetic_voc(root, train=2, test=1, seed=5, force=True)
    assert read_synth_params(root)["seed"] == 5 and len(list((root / "JPEGImages").iterdir())) == 3


def test_an_empty_working_folder_is_filled_in_place(tmp_path, monkeypatch):
    (tmp_path / "here").mkdir()
    monkeypatch.chdir(tmp_path / "here")
    make_synthetic_voc(".", train=2, test=1)
    assert read_synth_params(".") == synth_params(2, 1, 0, 128)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["here"]


def test_an_interrupted_write_leaves_the_target_as_it_was(tmp_path):
    root = make_synthetic_voc(tmp_path / "d", train=2, test=1, seed=1)
    before = _tree_digest(root)

    def stop(n):
        if n == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        make_synthetic_voc(root, train=4, test=1, seed=9, force=True, progress=stop)
    assert _tree_digest(root) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]
    with pytest.raises(KeyboardInterrupt):
        make_synthetic_voc(tmp_path / "new", train=4, test=1, progress=stop)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]


def test_cli_refusal_is_one_line_exit_2(cli, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    out = cli("data", "synth", "--out", tmp_path / "mine", "--train", "2", "--test", "1")
    assert out.returncode == 2 and (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    assert out.stderr.strip() == (f"detladder: error: {tmp_path / 'mine'}: is not empty and is not a synth dataset; "
                                  "use --force to replace the whole folder, or choose another --out")
    again = cli("data", "synth", "--out", tmp_path / "mine", "--train", "2", "--test", "1", "--force")
    assert again.returncode == 0, again.stderr
    assert "wrote 3 images" in again.stdout and not (tmp_path / "mine" / "notes.txt").exists()
    same = cli("data", "synth", "--out", tmp_path / "mine", "--train", "2", "--test", "1")
    assert same.returncode == 0 and "nothing written" in same.stdout
