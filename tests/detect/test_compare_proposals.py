"""Proposal recall per source in ``compare``: sources shared between variants are measured once and shown once."""

from __future__ import annotations

import numpy as np

from detect.build import build_detector
from detect.compare_proposals import ProposalMemo, proposal_recall_row, proposal_source
from detect.config import load_config
from detect.data.tensors import to_tensor
from detect.data.voc import VOCDataset
from eval.proposal_recall import average_recall_curve
from eval.report_proposals import figures as draw
from eval.report_proposals import section

FAST = ["model.precomputed.top_n_test=300"]


def test_rcnn_and_fast_rcnn_share_their_source_and_an_rpn_is_its_own():
    rcnn = load_config("configs/ladder/rcnn.yaml", FAST)
    fast = load_config("configs/ladder/fast_rcnn.yaml", FAST)
    assert proposal_source(rcnn, "rcnn")[1] == proposal_source(fast, "fast_rcnn")[1]
    assert proposal_source(rcnn, "rcnn")[0] == "Selective Search (fast)"
    a = proposal_source(load_config("configs/ladder/faster_rcnn.yaml"), "a")
    b = proposal_source(load_config("configs/ladder/faster_rcnn.yaml"), "b")
    assert a[0] == "RPN of a" and a[1] != b[1]
    assert proposal_source(load_config("configs/ladder/sliding_window.yaml"), "sw")[2] is False  # grid, not ranked
    assert proposal_source(load_config("configs/ladder/regression.yaml"), "reg") is None  # the whole image


def test_precomputed_recall_is_the_recall_of_the_boxes_the_head_sees(synth_root):
    config = load_config("configs/ladder/fast_rcnn.yaml", FAST + ["model.precomputed.top_n_test=20"])
    dataset = VOCDataset(synth_root, "test")
    model = build_detector(config, len(dataset.class_names)).eval()
    memo = ProposalMemo()
    row = proposal_recall_row(model, config, dataset, memo, "fast_rcnn")
    boxes = [memo.get(config, i, dataset[i][0])[0][0][:20] for i in range(len(dataset))]  # the source's top 20
    expected = average_recall_curve([a.boxes for a in dataset.annotations], boxes,
                                    difficult=[a.difficult for a in dataset.annotations])
    assert row["all"]["boxes_per_image"] <= 20
    np.testing.assert_allclose(row["all"]["average_recall"], expected["all"]["average_recall"], atol=1e-6)
    assert row["source"] == "Selective Search (fast)" and row["ranked"] is True


def test_an_rpns_proposals_are_in_original_pixels(synth_root):
    config = load_config("configs/ladder/faster_rcnn.yaml", ["data.image_size=96", "data.max_size=96"])
    dataset = VOCDataset(synth_root, "test")
    model = build_detector(config, len(dataset.class_names)).eval()
    image = dataset[0][0]
    (boxes,) = model.propose([to_tensor(image)])
    assert len(boxes) == config.model.rpn.post_nms_top_n_test
    assert boxes[:, 2].max() > 96 and boxes[:, 2].max() <= image.shape[1]  # 128 px image, resized to 96 inside


def test_report_shows_each_source_once():
    curve = {"source": "Selective Search (fast)", "key": "ss", "ranked": True, "n": [1, 10], "average_recall": [0.1, 0.5],
             "recall_50": [0.2, 0.9], "recall_70": [0.1, 0.6], "num_gt": 5,
             "all": {"boxes_per_image": 40.0, "average_recall": 0.6, "recall_50": 0.95, "recall_70": 0.7}}
    metrics = {"variants": [{"name": n, "status": "ok", "proposal_recall": curve} for n in ("rcnn", "fast_rcnn")]}
    part = section(metrics)
    assert len(part.tables[0].rows) == 1 and part.tables[0].rows[0][1] == "rcnn, fast_rcnn"
    assert part.tables[0].rows[0][3] == "0.600"  # AR@100: all 40 boxes
    assert "95% of the objects at IoU 0.5 but 70% at 0.7" in part.paragraphs[0]
    assert set(draw(metrics)) == {"proposal_recall.png"}
