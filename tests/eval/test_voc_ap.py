"""voc07 / voc12: hand-computed cases and random equality with a slow, literal transcription of the rules."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from eval.mean_ap import MeanAPEvaluator, evaluate
from eval.voc_ap import voc07_ap, voc12_ap


# ---------------------------------------------------------------- the reference: the rules, one by one, slowly
def reference_voc(images, dets, num_classes, use07):
    """images: [[(label, xmin, ymin, xmax, ymax, difficult), ...]] with 1-based inclusive integers;
    dets: [(image, label, score, xmin, ymin, xmax, ymax)] in file order. Returns {class: AP or None}."""
    out = {}
    for c in range(num_classes):
        npos = sum(1 for objs in images for o in objs if o[0] == c and not o[5])
        present = any(o[0] == c for objs in images for o in objs) or any(d[1] == c for d in dets)
        if not present:
            continue
        if npos == 0:
            out[c] = None
            continue
        mine = sorted((d for d in dets if d[1] == c), key=lambda d: -d[2])  # Python's sort is stable
        taken = set()
        tp, fp = [], []
        for img, _, _, x1, y1, x2, y2 in mine:
            best, best_j = -1.0, None
            for j, (lab, gx1, gy1, gx2, gy2, _) in enumerate(images[img]):
                if lab != c:
                    continue
                iw = min(x2, gx2) - max(x1, gx1) + 1  # the devkit's +1 overlap on inclusive pixels
                ih = min(y2, gy2) - max(y1, gy1) + 1
                inter = max(iw, 0) * max(ih, 0)
                union = (x2 - x1 + 1) * (y2 - y1 + 1) + (gx2 - gx1 + 1) * (gy2 - gy1 + 1) - inter
                if inter / union > best:  # strictly greater: the first object wins an exact tie
                    best, best_j = inter / union, j
            if best > 0.5:
                if images[img][best_j][5]:
                    continue  # a difficult object: neither TP nor FP
                if (img, best_j) in taken:
                    tp.append(0), fp.append(1)
                else:
                    taken.add((img, best_j))
                    tp.append(1), fp.append(0)
            else:
                tp.append(0), fp.append(1)
        ctp = np.cumsum(tp, dtype=float)
        cfp = np.cumsum(fp, dtype=float)
        rec, prec = ctp / npos, ctp / np.maximum(ctp + cfp, np.finfo(float).eps)
        if use07:
            ap = 0.0
            for k in range(11):  # rec >= k/10 as exact rationals
                above = [p for t, p in zip(ctp, prec) if Fraction(int(t), npos) >= Fraction(k, 10)]
                ap = ap + (max(above) if above else 0.0) / 11.0
        else:
            mrec, mpre = [0.0, *rec, 1.0], [0.0, *prec, 0.0]
            for i in range(len(mpre) - 2, -1, -1):
                mpre[i] = max(mpre[i], mpre[i + 1])
            ap = sum((mrec[i + 1] - mrec[i]) * mpre[i + 1] for i in range(len(mrec) - 1) if mrec[i + 1] != mrec[i])
        out[c] = ap
    return out


def to_engine(images, dets):
    """The same data as per-image dicts, boxes converted to 0-based exclusive (x1 = xmin - 1, x2 = xmax)."""
    gts, per_image = [], [[] for _ in images]
    for objs in images:
        arr = np.array([o[1:5] for o in objs], float).reshape(-1, 4)
        arr[:, :2] -= 1
        gts.append({"boxes": arr, "labels": np.array([o[0] for o in objs], int),
                    "difficult": np.array([o[5] for o in objs], bool)})
    for line, (img, lab, score, *box) in enumerate(dets):
        per_image[img].append((lab, score, box, line))
    out = []
    for rows in per_image:
        boxes = np.array([r[2] for r in rows], float).reshape(-1, 4)
        boxes[:, :2] -= 1
        out.append({"boxes": boxes, "scores": np.array([r[1] for r in rows], float),
                    "labels": np.array([r[0] for r in rows], int), "order": np.array([r[3] for r in rows], int)})
    return gts, out


def random_case(seed, num_images=30, num_classes=4):
    rng = np.random.default_rng(seed)
    images, dets = [], []
    for i in range(num_images):
        objs = []
        for _ in range(int(rng.integers(0, 6))):
            x1, y1 = (int(v) for v in rng.integers(1, 200, 2))
            w, h = (int(v) for v in rng.choice([1, 2, 5, 9, 10, 20, 40], 2))
            objs.append((int(rng.integers(0, num_classes)), x1, y1, x1 + w - 1, y1 + h - 1, bool(rng.random() < 0.2)))
        if rng.random() < 0.2 and objs:
            objs.append(objs[0])  # an exact duplicate object: ties in IoU
        images.append(objs)
        for lab, x1, y1, x2, y2, _ in objs:
            for _ in range(int(rng.integers(0, 3))):
                j = rng.integers(-3, 4, 4)
                box = [x1 + j[0], y1 + j[1], max(x1 + j[0], x2 + j[2]), max(y1 + j[1], y2 + j[3])]
                dets.append((i, lab if rng.random() < 0.9 else int(rng.integers(0, num_classes)),
                             float(np.round(rng.random(), 1)), *(int(v) for v in box)))
        for _ in range(int(rng.integers(0, 3))):
            x1, y1 = (int(v) for v in rng.integers(1, 200, 2))
            dets.append((i, int(rng.integers(0, num_classes)), float(np.round(rng.random(), 1)), x1, y1, x1 + 15, y1 + 9))
    order = rng.permutation(len(dets))
    return images, [dets[k] for k in order]


@pytest.mark.parametrize("protocol", ["voc07", "voc12"])
@pytest.mark.parametrize("seed", range(8))
def test_random_cases_equal_the_literal_reference(seed, protocol):
    images, dets = random_case(seed)
    names = ["a", "b", "c", "d"]
    expected = reference_voc(images, dets, len(names), protocol == "voc07")
    gts, per_image = to_engine(images, dets)
    result = evaluate(gts, per_image, names, protocol)
    assert result.per_class == {names[c]: ap for c, ap in expected.items()}  # exact, not approximate
    valid = [ap for ap in expected.values() if ap is not None]
    assert result.mAP == pytest.approx(np.mean(valid), abs=1e-15)


# ---------------------------------------------------------------- hand-computed cases
def one_image(objs, dets, protocol, names=("a", "b")):
    gts, per_image = to_engine([objs], [(0, *d) for d in dets])
    return evaluate(gts, per_image, list(names), protocol)


def test_tp_duplicate_and_miss_by_hand():
    # Two cats; detections ranked: TP on object 1, duplicate on object 1 (FP), TP on object 2.
    objs = [(0, 1, 1, 10, 10, False), (0, 21, 21, 30, 30, False)]
    dets = [(0, 0.9, 1, 1, 10, 10), (0, 0.8, 1, 1, 10, 10), (0, 0.7, 21, 21, 30, 30)]
    # precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1
    assert one_image(objs, dets, "voc12").per_class == {"a": pytest.approx(0.5 * 1 + 0.5 * 2 / 3)}
    assert one_image(objs, dets, "voc07").per_class == {"a": pytest.approx((6 * 1 + 5 * 2 / 3) / 11)}


def test_equal_scores_keep_file_order():
    objs = [(0, 1, 1, 10, 10, False)]
    fp_first = [(0, 0.5, 100, 100, 110, 110), (0, 0.5, 1, 1, 10, 10)]
    assert one_image(objs, fp_first, "voc12").per_class["a"] == pytest.approx(0.5)
    assert one_image(objs, fp_first[::-1], "voc12").per_class["a"] == pytest.approx(1.0)


def test_iou_must_exceed_one_half():
    objs = [(0, 1, 1, 10, 10, False)]  # 100 pixels; the detection covers 50 of them: IoU exactly 0.5
    assert one_image(objs, [(0, 0.9, 1, 1, 5, 10)], "voc12").per_class["a"] == 0.0
    assert one_image(objs, [(0, 0.9, 1, 1, 6, 10)], "voc12").per_class["a"] == 1.0  # 60/100


def test_difficult_match_is_neither_tp_nor_fp_and_difficult_only_class_is_null():
    objs = [(0, 1, 1, 10, 10, False), (0, 51, 51, 60, 60, True), (1, 1, 1, 10, 10, True)]
    dets = [(0, 0.9, 51, 51, 60, 60), (0, 0.8, 1, 1, 10, 10), (1, 0.9, 1, 1, 10, 10)]
    r = one_image(objs, dets, "voc07")
    assert r.per_class == {"a": pytest.approx(1.0), "b": None}
    assert r.mAP == pytest.approx(1.0)  # the null class stays out of the mean
    assert len(r.curves["a"].precision) == 1  # the dropped detection is not a point of the curve


def test_the_best_object_is_taken_even_when_already_taken():
    # Object 1 is the best match for both detections; the second is a FP even though object 2 overlaps it > .5.
    objs = [(0, 1, 1, 10, 10, False), (0, 1, 1, 10, 12, False)]
    dets = [(0, 0.9, 1, 1, 10, 10), (0, 0.8, 1, 1, 10, 10)]
    assert one_image(objs, dets, "voc12").per_class["a"] == pytest.approx(0.5)


def test_exact_tenths_in_voc07():
    # recall exactly 3/10 with precision 1, then nothing more: thresholds 0, .1, .2, .3 reach it.
    rec, prec = np.array([0.1, 0.2, 0.3]), np.array([1.0, 1.0, 1.0])
    assert voc07_ap(rec, prec) == pytest.approx(4 / 11)
    arange_version = sum(prec[rec >= t].max() if (rec >= t).any() else 0 for t in np.arange(0.0, 1.1, 0.1)) / 11
    assert arange_version == pytest.approx(3 / 11)  # 0.30000000000000004 misses 0.3: the documented difference
    assert voc12_ap(rec, prec) == pytest.approx(0.3)


def test_empty_detections_empty_images_and_extra_classes():
    gts, dets = to_engine([[(0, 1, 1, 10, 10, False)], []], [])
    r = evaluate(gts, dets, ["a", "b", "c"], "voc07", report_classes=["c"])
    assert r.per_class == {"a": 0.0, "c": None} and r.mAP == 0.0
    r = evaluate([], [], ["a"], "voc12")
    assert r.per_class == {} and np.isnan(r.mAP) and r.to_json()["mAP"] is None


def test_accumulator_equals_one_shot_evaluation():
    images, dets = random_case(3)
    gts, per_image = to_engine(images, dets)
    acc = MeanAPEvaluator(["a", "b", "c", "d"], "voc12")
    for start in range(0, len(gts), 7):
        acc.update(gts[start:start + 7], per_image[start:start + 7])
    assert acc.compute().per_class == evaluate(gts, per_image, ["a", "b", "c", "d"], "voc12").per_class
    acc.reset()
    assert len(acc) == 0


def test_pooled_curve_counts_every_class():
    objs = [(0, 1, 1, 10, 10, False), (1, 21, 21, 30, 30, False)]
    dets = [(0, 0.9, 1, 1, 10, 10), (1, 0.8, 100, 100, 110, 110), (1, 0.7, 21, 21, 30, 30)]
    r = one_image(objs, dets, "voc12")
    np.testing.assert_allclose(r.pooled.recall, [0.5, 0.5, 1.0])
    np.testing.assert_allclose(r.pooled.precision, [1.0, 0.5, 2 / 3])
