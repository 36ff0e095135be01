"""Average recall over IoU 0.5:0.05:0.95 against the number of proposals (Hosang et al., TPAMI 2016)."""

from __future__ import annotations

import numpy as np
import pytest

from eval.proposal_recall import AR_THRESHOLDS, average_recall_curve


def test_hand_computed_average_recall():
    gt = [np.array([[0, 0, 10, 10]]), np.array([[0, 0, 10, 10], [20, 20, 30, 30]])]
    props = [np.array([[0, 0, 10, 10], [0, 0, 10, 12]]),
             np.array([[0, 0, 10, 11], [20, 20, 30, 30], [50, 50, 60, 60]])]
    curve = average_recall_curve(gt, props, top_ns=(1, 2, 5))
    # top 1: the first box is exact (10 of 10 thresholds), 100/110 = 0.909 passes 0.5..0.9 (9), the third is missed
    assert curve["n"] == [1, 2]
    assert curve["average_recall"] == pytest.approx([19 / 30, 29 / 30])
    assert curve["recall_50"] == pytest.approx([2 / 3, 1.0]) and curve["recall_70"] == pytest.approx([2 / 3, 1.0])
    assert curve["all"] == pytest.approx({"boxes_per_image": 2.5, "average_recall": 29 / 30,
                                          "recall_50": 1.0, "recall_70": 1.0})
    assert curve["num_gt"] == 3


def test_thresholds_are_cocos_and_difficult_objects_are_left_out():
    assert AR_THRESHOLDS.tolist() == np.linspace(0.5, 0.95, 10).tolist() and len(AR_THRESHOLDS) == 10
    gt = [np.array([[0, 0, 10, 10], [40, 40, 50, 50]])]
    props = [np.array([[0, 0, 10, 10]])]
    curve = average_recall_curve(gt, props, difficult=[np.array([False, True])])
    assert curve["num_gt"] == 1 and curve["all"]["average_recall"] == 1.0


def test_no_ground_truth_or_no_proposals():
    empty = average_recall_curve([np.zeros((0, 4))], [np.array([[0, 0, 5, 5]])])
    assert empty["all"]["average_recall"] is None and empty["num_gt"] == 0
    none = average_recall_curve([np.array([[0, 0, 5, 5]])], [np.zeros((0, 4))])
    assert none["n"] == [] and none["all"]["average_recall"] == 0.0
