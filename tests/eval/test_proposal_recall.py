"""Proposal recall, ABO and MABO on hand-made cases."""

from __future__ import annotations

import numpy as np
import pytest

from eval.proposal_recall import plot_recall_vs_n, proposal_recall

CLASSES = ("cat", "dog", "cow")


def _case():
    # Image 0: a cat [0,0,10,10] and a dog [20,0,30,10]; image 1: a dog [0,0,10,10] (difficult
    # cow beside it). Proposals ranked best first.
    gt = [np.array([[0, 0, 10, 10], [20, 0, 30, 10]], float), np.array([[0, 0, 10, 10], [50, 50, 60, 60]], float)]
    labels = [np.array([0, 1]), np.array([1, 2])]
    difficult = [np.array([False, False]), np.array([False, True])]
    props = [
        np.array([[0, 0, 10, 5],  # IoU 0.5 with the cat
                  [20, 0, 30, 8],  # IoU 0.8 with the dog
                  [0, 0, 10, 10]], float),  # exact cat
        np.array([[0, 0, 10, 6]], float),  # IoU 0.6 with the dog
    ]
    return gt, labels, difficult, props


def test_recall_for_top_n_and_thresholds():
    gt, labels, difficult, props = _case()
    res = proposal_recall(gt, labels, props, CLASSES, top_ns=(1, 2, None), difficult=difficult)
    # top 1: cat 0.5 (>= 0.5 counts), dog0 0, dog1 0.6 -> 2 of 3 at 0.5, 0 at 0.7
    assert res.recall[0.5] == {"1": pytest.approx(2 / 3), "2": 1.0, "all": 1.0}
    assert res.recall[0.7] == {"1": 0.0, "2": pytest.approx(1 / 3), "all": pytest.approx(2 / 3)}
    assert res.num_gt == 3 and res.num_images == 2
    assert res.boxes_per_image == 2.0


def test_abo_per_class_and_mabo():
    gt, labels, difficult, props = _case()
    res = proposal_recall(gt, labels, props, CLASSES, top_ns=(1, None), difficult=difficult)
    assert res.abo_per_class == {"cat": 1.0, "dog": pytest.approx((0.8 + 0.6) / 2), "cow": None}
    assert res.mabo == pytest.approx((1.0 + 0.7) / 2)  # mean over classes with ground truth
    assert res.mabo_at["1"] == pytest.approx((0.5 + (0.0 + 0.6) / 2) / 2)
    js = res.to_json()
    assert js["recall"]["0.5"]["all"] == 1.0 and js["abo_per_class"]["cow"] is None


def test_difficult_counts_when_not_given():
    gt, labels, _, props = _case()
    res = proposal_recall(gt, labels, props, CLASSES, top_ns=(None,))
    assert res.num_gt == 4 and res.recall[0.5]["all"] == 0.75 and res.abo_per_class["cow"] == 0.0


def test_no_proposals_and_no_ground_truth():
    res = proposal_recall([np.zeros((1, 4)) + [0, 0, 5, 5]], [np.array([0])], [np.zeros((0, 4))], CLASSES)
    assert res.recall[0.5]["all"] == 0.0 and res.mabo == 0.0 and res.boxes_per_image == 0.0
    empty = proposal_recall([np.zeros((0, 4))], [np.zeros(0, int)], [np.ones((3, 4))], CLASSES)
    assert empty.recall[0.5]["all"] is None and empty.mabo is None
    with pytest.raises(ValueError, match="one entry per image"):
        proposal_recall([np.zeros((0, 4))], [], [np.zeros((0, 4))], CLASSES)


def test_plot_writes_a_png(tmp_path):
    gt, labels, difficult, props = _case()
    res = proposal_recall(gt, labels, props, CLASSES, difficult=difficult)
    plot_recall_vs_n({"a": res, "b": res}, tmp_path / "r.png")
    assert (tmp_path / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
