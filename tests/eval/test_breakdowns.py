"""Breakdowns by objects per image and by relative object size, and CorLoc: hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from eval.breakdowns import SIZE_NAMES, breakdown_by_count, breakdown_by_size, breakdowns, corloc
from tests.eval.arrays import dets as _dets
from tests.eval.arrays import gt as _gt

CLASSES = ["a", "b"]


def test_by_objects_per_image():
    four = [[0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10], [60, 0, 70, 10]]
    gts = [_gt([[0, 0, 10, 10]], [0]),
           _gt([[0, 0, 10, 10], [20, 20, 30, 30]], [0, 1]),
           _gt(four, [0, 0, 0, 0]),
           _gt([], [])]
    dets = [_dets([[0, 0, 10, 10]], [0.9], [0]),      # the one object found: AP 1
            _dets([[0, 0, 10, 10]], [0.8], [0]),      # a found, b not: mAP (1 + 0) / 2
            _dets(four[:2], [0.7, 0.6], [0, 0]),       # half of four found, precision 1: voc12 AP 0.5
            _dets([[0, 0, 10, 10]], [0.99], [1])]     # an image without objects is in no bin
    out = breakdown_by_count(gts, dets, CLASSES, "voc12")
    assert out == {"1": {"mAP": 1.0, "images": 1, "objects": 1},
                   "2-3": {"mAP": 0.5, "images": 1, "objects": 2},
                   "4+": {"mAP": 0.5, "images": 1, "objects": 4}}


def _size_case(scale: float):
    """A 100x100 image (times ``scale``): S small, M medium, L large, all class a."""
    s = scale
    gts = [_gt(np.array([[0, 0, 5, 5], [20, 20, 40, 40], [50, 50, 100, 100]]) * s, [0, 0, 0])]
    dets = [_dets(np.array([[20, 20, 40, 40],     # .90 finds M
                            [0, 50, 40, 100],     # .95 large, on nothing
                            [90, 0, 95, 5],       # .80 small, on nothing
                            [50, 50, 100, 100]]) * s,  # .50 finds L
                  [0.9, 0.95, 0.8, 0.5], [0, 0, 0, 0])]
    return gts, dets, [100.0 * 100.0 * s * s]


@pytest.mark.parametrize("scale", [1.28, 5.0])
def test_by_relative_size_means_the_same_at_any_image_size(scale):
    # small: S never found, the small false positive counts; the others are ignored or outside -> AP 0
    # medium: M found at .90; the large and small false positives lie outside the range -> AP 1
    # large: the large false positive (.95) ranks above L's detection (.50) -> voc12 AP 0.5
    gts, dets, areas = _size_case(scale)
    out = breakdown_by_size(gts, dets, ["a"], areas, "voc12")
    assert out == {"small": {"mAP": 0.0, "objects": 1}, "medium": {"mAP": 1.0, "objects": 1},
                   "large": {"mAP": pytest.approx(0.5), "objects": 1}}


def test_size_thresholds_edges_and_empty_ranges():
    # an 8x8 box in a 64x64 image has relative side exactly 1/8: medium, not small
    gts = [_gt([[0, 0, 8, 8]], [0])]
    dets = [_dets([[0, 0, 8, 8]], [0.5], [0])]
    out = breakdown_by_size(gts, dets, ["a"], [64.0 * 64.0])
    assert out["small"] == {"mAP": None, "objects": 0} and out["medium"] == {"mAP": 1.0, "objects": 1}
    assert list(out) == list(SIZE_NAMES)
    with pytest.raises(ValueError):
        breakdown_by_size(gts, dets, ["a"], [0.0])


def test_corloc_on_one_object_images():
    gts = [_gt([[0, 0, 10, 10]], [0]),                                   # top detection right: yes
           _gt([[0, 0, 10, 10]], [1]),                                   # top detection has the wrong class: no
           _gt([[0, 0, 10, 10], [50, 50, 60, 60]], [0, 1], [False, True]),  # one counted object: yes
           _gt([[0, 0, 10, 10], [50, 50, 60, 60]], [0, 1]),              # two objects: not counted
           _gt([[0, 0, 10, 10]], [0])]                                   # nothing detected: no
    dets = [_dets([[1, 1, 10, 10], [50, 50, 60, 60]], [0.9, 0.3], [0, 1]),
            _dets([[0, 0, 10, 10], [0, 0, 10, 10]], [0.9, 0.8], [0, 1]),
            _dets([[0, 0, 10, 9]], [0.4], [0]),
            _dets([[0, 0, 10, 10]], [0.9], [0]),
            _dets([], [], [])]
    assert corloc(gts, dets) == {"value": 0.5, "images": 4, "correct": 2}
    assert corloc(gts[3:4], dets[3:4]) == {"value": None, "images": 0, "correct": 0}


def test_breakdowns_bundle():
    gts, dets, areas = _size_case(1.0)
    out = breakdowns(gts, dets, ["a"], areas, protocol="coco")
    assert out["protocol"] == "voc12" and out["size_thresholds"] == [0.125, 0.375]
    # FP .95, TP .90, FP .80, TP .50 of 3 objects: precision 1/2 at recall 1/3 and 2/3 -> voc12 AP 1/3
    assert out["by_count"]["2-3"] == {"mAP": pytest.approx(1 / 3), "images": 1, "objects": 3}
    assert out["corloc"]["images"] == 0


def test_report_section_states_the_trend_from_the_numbers():
    from eval import report_breakdowns

    gts, dets, areas = _size_case(1.0)
    one = breakdowns([_gt([[0, 0, 10, 10]], [0])], [_dets([[0, 0, 10, 10]], [0.9], [0])], ["a"], [1e4])
    crowded = breakdowns(gts * 2, dets * 2, ["a"], areas * 2)
    crowded["by_count"]["1"] = one["by_count"]["1"]
    crowded["by_count"]["4+"] = {"mAP": 0.25, "images": 3, "objects": 14}
    crowded["corloc"] = {"value": 0.5, "images": 4, "correct": 2}
    metrics = {"variants": [{"name": "v", "status": "ok", "breakdowns": crowded}]}
    sec = report_breakdowns.section(metrics)
    assert sec.paragraphs == ["v: its AP falls from 1.000 on one-object images to 0.250 on images with 4 or more "
                              "objects; CorLoc on one-object images 0.50 (2 of 4)."]
    assert [t.rows[0][0] for t in sec.tables] == ["v", "v"] and len(sec.tables[1].header) == 4
    assert report_breakdowns.figures(metrics)[report_breakdowns.FIGURE].startswith(b"\x89PNG")
