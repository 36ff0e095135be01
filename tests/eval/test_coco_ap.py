"""The coco protocol: equal to pycocotools' COCOeval (the oracle) to 1e-9, plus hand-computed cases."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
import pytest

from eval.result_files import read_coco_ground_truth, read_coco_results
from eval.coco_ap import coco_precision_recall
from eval.coco_io import read_coco_results_flat
from eval.mean_ap import evaluate

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "coco_val2014_sample"


def pycocotools_eval(gt_path, res_path):
    """COCOeval (bbox) run in-process: (stats (12,), per-category mean precision at area all / 100 dets)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_path))
        dt = gt.loadRes(str(res_path))
        ev = COCOeval(gt, dt, iouType="bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    per_class = {}
    for k, cat in enumerate(ev.params.catIds):
        p = ev.eval["precision"][:, :, k, 0, -1]
        per_class[gt.cats[cat]["name"]] = float(np.mean(p[p > -1])) if (p > -1).any() else None
    return np.array(ev.stats), per_class, ev.eval["precision"]


def pycocotools_arrays(gt_path, res_path):
    """COCOeval's full ``eval["precision"]`` (T, R, K, A, M) and ``eval["recall"]`` (T, K, A, M)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_path))
        ev = COCOeval(gt, gt.loadRes(str(res_path)), iouType="bbox")
        ev.evaluate()
        ev.accumulate()
    return ev.eval["precision"], ev.eval["recall"]


def our_arrays(gt_path, res_path):
    """Our (precision, recall) through the file readers, as ``detladder eval --protocol coco`` runs."""
    truth = read_coco_ground_truth(gt_path)
    dets = read_coco_results_flat(res_path, truth.image_ids, truth.category_ids)
    return coco_precision_recall(truth.flat, dets, len(truth.gts), len(truth.class_names))[:2]


def ours(gt_path, res_path):
    truth = read_coco_ground_truth(gt_path)
    dets = read_coco_results(res_path, truth.image_ids, truth.category_ids)
    return evaluate(truth.gts, dets, truth.class_names, "coco")


def test_real_coco_sample_matches_published_and_live_pycocotools():
    result = ours(SAMPLE / "instances.json", SAMPLE / "results.json")
    published = [0.503647, 0.696973, 0.571667, 0.593252, 0.557991, 0.489363,
                 0.386813, 0.593680, 0.595353, 0.654764, 0.603130, 0.553744]
    np.testing.assert_allclose(result.stats, published, atol=1e-6)
    stats, per_class, _ = pycocotools_eval(SAMPLE / "instances.json", SAMPLE / "results.json")
    np.testing.assert_allclose(result.stats, stats, atol=1e-9, rtol=0)
    assert result.mAP == result.stats[0]
    assert result.per_class.keys() == per_class.keys()
    for name, ap in per_class.items():
        assert (ap is None) == (result.per_class[name] is None), name
        if ap is not None:
            assert abs(result.per_class[name] - ap) < 1e-9, name


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4, 5])
def test_random_corpora_equal_pycocotools(coco_files, seed):
    gt_path, res_path = coco_files(seed, max_per_pair=120 if seed % 2 else 0)
    result = ours(gt_path, res_path)
    stats, per_class, precision = pycocotools_eval(gt_path, res_path)
    np.testing.assert_allclose(result.stats, stats, atol=1e-9, rtol=0)
    assert -1 not in stats[3:6], "the corpus should populate every area range"
    for name, ap in per_class.items():
        assert (ap is None) == (result.per_class[name] is None)
        if ap is not None:
            assert abs(result.per_class[name] - ap) < 1e-9
    k = 0
    name = read_coco_ground_truth(gt_path).class_names[k]
    if name in result.curves:
        np.testing.assert_allclose(result.curves[name].precision, precision[0, :, k, 0, -1], atol=1e-12)


@pytest.mark.parametrize("case", ["sample", "random", "crowds", "capped"])
def test_full_precision_and_recall_arrays_equal_pycocotools_bit_for_bit(coco_files, case):
    """Not just the 12 numbers: every (IoU, recall threshold, class, area, maxDets) cell, -1s included."""
    gt_path, res_path = {
        "sample": lambda: (SAMPLE / "instances.json", SAMPLE / "results.json"),
        "random": lambda: coco_files(7),
        "crowds": lambda: coco_files(8, num_images=20, crowd_rate=0.5),
        "capped": lambda: coco_files(9, max_per_pair=120),  # more than 100 detections in a pair
    }[case]()
    ref_p, ref_r = pycocotools_arrays(gt_path, res_path)
    p, r = our_arrays(gt_path, res_path)
    assert p.shape == ref_p.shape and r.shape == ref_r.shape
    np.testing.assert_array_equal(p, ref_p)
    np.testing.assert_array_equal(r, ref_r)
    assert (p == -1).any() or case != "sample"  # the sample has a category without objects: -1 cells compared too


def test_crowd_heavy_corpus_equals_pycocotools(coco_files):
    gt_path, res_path = coco_files(11, num_images=25, crowd_rate=0.5)
    stats, _, _ = pycocotools_eval(gt_path, res_path)
    np.testing.assert_allclose(ours(gt_path, res_path).stats, stats, atol=1e-9, rtol=0)


def _one(gt_boxes, det_boxes, scores, iscrowd=None, area=None, gt_labels=None, det_labels=None, names=("a",)):
    gt = {"boxes": np.array(gt_boxes, float).reshape(-1, 4), "difficult": np.zeros(len(gt_boxes), bool),
          "labels": np.array(gt_labels if gt_labels is not None else [0] * len(gt_boxes))}
    if iscrowd is not None:
        gt["iscrowd"] = np.array(iscrowd, bool)
    if area is not None:
        gt["area"] = np.array(area, float)
    det = {"boxes": np.array(det_boxes, float).reshape(-1, 4), "scores": np.array(scores, float),
           "labels": np.array(det_labels if det_labels is not None else [0] * len(det_boxes))}
    return evaluate([gt], [det], list(names), "coco")


def test_iou_exactly_one_half_matches_at_the_first_threshold_only():
    # 10x10 object, detection covering its left half: IoU = 50/100 = 0.5 exactly (>= .5 is a match).
    r = _one([[0, 0, 10, 10]], [[0, 0, 5, 10]], [0.9], area=[5000.0])
    assert r.stats[1] == pytest.approx(1.0, abs=1e-15) and r.stats[2] == 0.0  # 1/(1 + eps), as pycocotools
    assert r.stats[0] == pytest.approx(0.1, abs=1e-15)  # precision 1 at IoU .5, 0 at the other nine
    assert r.stats[4] == pytest.approx(0.1) and r.stats[3] == -1 and r.stats[5] == -1  # area 5000: only "medium"


def test_crowd_absorbs_many_detections_and_is_never_counted():
    # One real object and one crowd region; three detections inside the crowd are ignored, not false positives.
    r = _one([[0, 0, 20, 20], [100, 100, 300, 300]], [[0, 0, 20, 20], [110, 110, 150, 150], [200, 200, 240, 240],
             [120, 250, 160, 290]], [0.5, 0.9, 0.8, 0.7], iscrowd=[False, True])
    assert r.stats[0] == pytest.approx(1.0) and r.per_class["a"] == pytest.approx(1.0)


def test_image_without_objects_still_counts_its_detections_as_false_positives():
    gts = [{"boxes": np.array([[0, 0, 10, 10.0]]), "labels": np.array([0]), "difficult": np.zeros(1, bool)},
           {"boxes": np.zeros((0, 4)), "labels": np.zeros(0, int), "difficult": np.zeros(0, bool)}]
    dets = [{"boxes": np.array([[0, 0, 10, 10.0]]), "scores": np.array([0.5]), "labels": np.array([0])},
            {"boxes": np.array([[0, 0, 10, 10.0]]), "scores": np.array([0.9]), "labels": np.array([0])}]
    r = evaluate(gts, dets, ["a"], "coco")
    # ranked: FP (0.9) then TP (0.5): precision 1/2 at recall 1 everywhere
    assert r.stats[0] == pytest.approx(0.5) and r.stats[8] == pytest.approx(1.0)


def test_empty_detections_and_classes_without_objects():
    r = _one([[0, 0, 10, 10]], [], [], names=("a", "b"))
    assert r.per_class == {"a": 0.0, "b": None} and r.stats[0] == 0.0
    r = _one([], [], [], names=("a",))
    assert r.per_class == {"a": None} and r.stats == [-1.0] * 12


def test_decimal_boxes_at_exact_thresholds_equal_pycocotools(tmp_path):
    # Detections covering a fraction k of an object (IoU = k exactly in real numbers, k = .50 ... .95) and
    # areas at the 32**2 / 96**2 edges, with decimal coordinates: IoU must be pycocotools' to the last bit,
    # which needs the file's w * h rather than ((x + w) - x) * ((y + h) - y).
    import orjson

    rng = np.random.default_rng(7)
    images, anns, results = [], [], []
    for i in range(60):
        images.append({"id": i + 1})
        x, y = np.round(rng.uniform(0, 300, 2), 1).tolist()
        w, h = [(25.6, 40.0), (76.8, 120.0), (12.3, 45.7), (100.1, 0.7)][i % 4]
        anns.append({"id": i + 1, "image_id": i + 1, "category_id": 1, "bbox": [x, y, w, h], "area": w * h,
                     "iscrowd": 0})
        k = 0.5 + 0.05 * (i % 10)
        results.append({"image_id": i + 1, "category_id": 1, "bbox": [x, y, w * k, h], "score": 0.5})
        results.append({"image_id": i + 1, "category_id": 1, "bbox": [x + 0.1, y, w, h], "score": 0.25})
    gt_path, res_path = tmp_path / "gt.json", tmp_path / "res.json"
    gt_path.write_bytes(orjson.dumps({"images": images, "annotations": anns,
                                      "categories": [{"id": 1, "name": "a"}]}))
    res_path.write_bytes(orjson.dumps(results))
    stats, _, _ = pycocotools_eval(gt_path, res_path)
    assert ours(gt_path, res_path).stats == stats.tolist()  # exactly
