"""The synthetic VOC dataset: deterministic, in the real VOC layout, and a fair detection problem."""

from __future__ import annotations

import hashlib

import cv2
import numpy as np
import pytest

from detect.data.synth import DIFFICULT_SIDE, SHAPES, make_synthetic_voc, render_image
from detect.data.voc import VOCDataset


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
