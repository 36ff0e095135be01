"""TIDE error analysis: a hand-computed case, and equality with tidecv 1.0.1 (the oracle) to 1e-6 of its percent."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest

from eval.error_analysis import MAIN_ERRORS, SPECIAL_ERRORS, analyse_error_files, analyse_errors
from eval.result_files import read_voc_ground_truth, read_voc_results, write_voc_results

from .conftest import random_coco, write_voc_root
from tests.eval.arrays import dets as _dets
from tests.eval.arrays import gt as _gt

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "coco_val2014_sample"


def _hand_case():
    """One image: A, C of class 0; B, D, E of class 1. Every error type once (see the test for the sums)."""
    gts = [_gt([[0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10], [100, 100, 110, 110], [200, 200, 210, 210]],
               [0, 1, 0, 1, 1])]
    dets = [_dets([[0, 0, 10, 10],      # d1 .90 class 0: takes A
                   [0, 0, 10, 10],      # d2 .80 class 0: A already taken -> Dupe
                   [20, 0, 30, 10],     # d3 .95 class 0 on B (class 1) -> Cls
                   [60, 60, 70, 70],    # d4 .60 class 1 on nothing -> Bkg
                   [40, 0, 44, 10],     # d5 .40 class 0, IoU 0.4 with C -> Loc
                   [0, 0, 10, 4],       # d6 .50 class 1, IoU 0.4 with A (class 0) -> Both
                   [100, 100, 110, 110]],  # d7 .97 class 1: takes D; E is missed
                  [0.90, 0.80, 0.95, 0.60, 0.40, 0.50, 0.97], [0, 0, 0, 1, 0, 1, 1])]
    return gts, dets


def test_hand_computed_case():
    # class 0 (2 objects): d3 FP .95, d1 TP .9, d2 FP, d5 FP -> precision 0.5 up to recall 0.5: 25.5 / 101
    # class 1 (3 objects): d7 TP .97, d4 FP, d6 FP -> precision 1 up to recall 1/3 (34 of 101 points): 34 / 101
    gts, dets = _hand_case()
    r = analyse_errors(gts, dets, num_classes=2)
    assert r.counts == {"Cls": 1, "Loc": 1, "Both": 1, "Dupe": 1, "Bkg": 1, "Miss": 1}
    assert r.ap50 == pytest.approx(59.5 / 202, abs=1e-12)
    expected_main = {"Cls": 58.5, "Loc": 25.0, "Both": 0.0, "Dupe": 0.0, "Bkg": 0.0, "Miss": 17.0}
    for name, value in expected_main.items():  # gains in units of 1 / 202
        assert r.main[name] == pytest.approx(value / 202, abs=1e-12), name
    assert r.special["FalsePos"] == pytest.approx(25.5 / 202, abs=1e-12)
    assert r.special["FalseNeg"] == pytest.approx(92 / 202, abs=1e-12)
    _assert_equal(r, _tide_from_arrays(gts, dets))


def test_difficult_object_is_an_ignore_region():
    # a class-0 detection inside a difficult class-0 object leaves the AP, yet still gets its error type
    gts = [_gt([[0, 0, 10, 10], [50, 50, 90, 90]], [0, 0], difficult=[False, True])]
    dets = [_dets([[0, 0, 10, 10], [55, 55, 75, 75]], [0.5, 0.9], [0, 0])]
    r = analyse_errors(gts, dets, num_classes=1)
    assert r.ap50 == pytest.approx(1.0) and r.special["FalsePos"] == pytest.approx(0.0)
    assert r.counts["Bkg"] == 1
    gts[0]["difficult"][:] = False  # now the object counts: one of two found, the better-scored detection a Loc
    r = analyse_errors(gts, dets, num_classes=1)
    assert r.counts["Loc"] == 1 and r.ap50 < 1.0
    _assert_equal(r, _tide_from_arrays(gts, dets))


def test_empty_inputs():
    r = analyse_errors([_gt([], [])], [_dets([], [], [])], num_classes=3)
    assert np.isnan(r.ap50) and all(np.isnan(v) for v in r.main.values())
    assert r.to_json()["main"]["Cls"] is None
    r = analyse_errors([_gt([[0, 0, 5, 5]], [2])], [_dets([], [], [])], num_classes=3)
    # everything missed, nothing detected: fixing the misses leaves nothing to evaluate (tidecv divides by zero)
    assert r.ap50 == 0.0 and r.main["Cls"] == 0.0 and np.isnan(r.main["Miss"]) and r.counts["Miss"] == 1


def _xywh(box):
    x1, y1, x2, y2 = (float(v) for v in box)
    return [x1, y1, x2 - x1, y2 - y1]


def _tide_from_arrays(gts, dets):
    """tidecv on per-image arrays: difficult / crowd objects as ignore regions of their class."""
    pytest.importorskip("tidecv")  # the oracle, in the dev extra
    from tidecv import Data

    truth, preds = Data("gt"), Data("dets")
    for i, (g, d) in enumerate(zip(gts, dets)):
        truth.add_image(i, str(i))
        ignore = np.asarray(g["difficult"], bool) | np.asarray(g.get("iscrowd", g["difficult"]), bool)
        for box, label, ign in zip(g["boxes"], g["labels"], ignore):
            add = truth.add_ignore_region if ign else truth.add_ground_truth
            add(i, int(label), box=_xywh(box))
        for k in np.argsort(d.get("order", np.arange(len(d["scores"]))), kind="stable"):
            preds.add_detection(i, int(d["labels"][k]), float(d["scores"][k]), box=_xywh(d["boxes"][k]))
    return _run_tide(truth, preds)


def _run_tide(truth, preds):
    from tidecv import TIDE

    tide = TIDE()
    with contextlib.redirect_stdout(io.StringIO()):
        run = tide.evaluate(truth, preds, mode=TIDE.BOX, name="x")
        errors = tide.get_all_errors()
    return run.ap, errors["main"]["x"], errors["special"]["x"]


def _assert_equal(ours, theirs):
    ap, main, special = theirs
    assert abs(ours.ap50 * 100 - ap) <= 1e-6
    for name in MAIN_ERRORS:
        assert abs(ours.main[name] * 100 - main[name]) <= 1e-6, name
    for name in SPECIAL_ERRORS:
        assert abs(ours.special[name] * 100 - special[name]) <= 1e-6, name


def _tide_coco(gt_path: Path, res_path: Path, tmp_path: Path):
    """tidecv's own COCO readers; they want a `segmentation` on every annotation (we add the box polygon) and
    a file name and size on every image."""
    pytest.importorskip("tidecv")
    from tidecv import datasets

    data = json.loads(gt_path.read_text())
    for a in data["annotations"]:
        x, y, w, h = a["bbox"]
        a["segmentation"] = [[x, y, x + w, y, x + w, y + h, x, y + h]]
        a.setdefault("iscrowd", 0)
    for im in data["images"]:
        im.setdefault("width", 640)
        im.setdefault("height", 480)
        im.setdefault("file_name", f"{im['id']}.jpg")
    with_seg = tmp_path / "gt_with_segmentation.json"
    with_seg.write_text(json.dumps(data))
    with contextlib.redirect_stdout(io.StringIO()):
        truth, preds = datasets.COCO(str(with_seg)), datasets.COCOResult(str(res_path))
    return _run_tide(truth, preds)


def test_equals_tidecv_on_the_real_coco_sample(tmp_path):
    ours = analyse_error_files(SAMPLE / "instances.json", SAMPLE / "results.json")
    theirs = _tide_coco(SAMPLE / "instances.json", SAMPLE / "results.json", tmp_path)
    _assert_equal(ours, theirs)
    assert ours.main["Cls"] > 0.1 and ours.counts["Miss"] > 0  # the sample has real errors to find


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4, 5])
def test_equals_tidecv_on_random_coco(tmp_path, seed):
    # crowds, unsorted image ids, tied scores, whole-number boxes (exact IoU ties), >100 detections in one image
    gt, results = random_coco(seed, num_images=30, max_per_pair=120 if seed == 0 else 0)
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "res.json").write_text(json.dumps(results))
    ours = analyse_error_files(tmp_path / "gt.json", tmp_path / "res.json")
    _assert_equal(ours, _tide_coco(tmp_path / "gt.json", tmp_path / "res.json", tmp_path))


@pytest.mark.parametrize("seed", [0, 1])
def test_equals_tidecv_from_voc_files(tmp_path, seed):
    rng = np.random.default_rng(seed)
    classes = ["cat", "dog", "bird"]
    images, dets = {}, []
    for i in range(25):
        objects = []
        for _ in range(int(rng.integers(0, 6))):
            x, y = (int(v) for v in rng.integers(1, 260, 2))
            w, h = (int(v) for v in rng.integers(12, 120, 2))
            objects.append((str(rng.choice(classes)), x, y, x + w, y + h, bool(rng.random() < 0.2)))
        images[f"img{i:03d}"] = objects
        boxes, scores, labels = [], [], []
        for c, x1, y1, x2, y2, _ in objects:  # jittered copies, wrong classes sometimes, plus background
            for _ in range(int(rng.integers(0, 3))):
                j = rng.integers(-5, 6, 4)
                grow = 20 if rng.random() < 0.3 else 0  # some mislocalised
                boxes.append([x1 - 1 + j[0], y1 - 1 + j[1], x2 + j[2] + grow, y2 + j[3] + grow])
                labels.append(classes.index(c) if rng.random() < 0.8 else int(rng.integers(0, 3)))
                scores.append(float(np.round(rng.random(), 2)))
        for _ in range(int(rng.integers(0, 3))):
            x, y = rng.integers(0, 300, 2)
            boxes.append([x, y, x + 40, y + 30])
            labels.append(int(rng.integers(0, 3)))
            scores.append(float(np.round(rng.random(), 2)))
        dets.append(_dets(boxes, scores, labels))
    root = write_voc_root(tmp_path / "voc", images, classes)
    write_voc_results(tmp_path / "res", "test", list(images), dets, classes)
    ours = analyse_error_files(root, tmp_path / "res", "test")
    truth = read_voc_ground_truth(root, "test")
    read_back, _ = read_voc_results(tmp_path / "res", "test", truth.image_ids, truth.class_names)
    _assert_equal(ours, _tide_from_arrays(truth.gts, read_back))


def test_report_section_names_the_costliest_errors_from_the_numbers():
    from eval import report_errors

    gts, dets = _hand_case()
    errors = analyse_errors(gts, dets, num_classes=2).to_json()
    metrics = {"variants": [{"name": "hand", "status": "ok", "errors": errors},
                            {"name": "broken", "status": "failed", "errors": None}]}
    sec = report_errors.section(metrics)
    assert sec.paragraphs == ["hand: confused classes cost the most (+0.290 AP@50 if fixed), "
                              "then mislocalised boxes (+0.124)."]  # 58.5 / 202 and 25 / 202
    assert sec.tables[0].rows[0][:3] == ["hand", "0.295", "0.290"] and len(sec.tables[0].rows) == 1
    png = report_errors.figures(metrics)[report_errors.FIGURE]
    assert png.startswith(b"\x89PNG")
    assert report_errors.section({"variants": []}) is None
