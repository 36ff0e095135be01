"""Fast R-CNN: Faster R-CNN's detector with precomputed proposals; the proposal cache it reads."""

from __future__ import annotations

import pytest
import torch
from torchvision.models.detection.image_list import ImageList

from detect.detectors.precomputed import PrecomputedSource
from eval.errors import InputError
from tests.detect.ladder_util import assert_detection_schema, batch, build, small_config, train_steps


def test_fast_and_faster_rcnn_share_the_head_and_backbone_code():
    fast, faster = build("fast_rcnn", 4), build("faster_rcnn", 4)
    assert type(fast) is type(faster)
    assert type(fast.roi_heads) is type(faster.roi_heads)
    assert type(fast.roi_heads.box_head) is type(faster.roi_heads.box_head)
    assert type(fast.roi_heads.box_predictor) is type(faster.roi_heads.box_predictor)
    assert type(fast.backbone) is type(faster.backbone)
    # the same parameter names and shapes in the head: a checkpoint of one head loads into the other
    fast_keys = {k: v.shape for k, v in fast.roi_heads.state_dict().items()}
    faster_keys = {k: v.shape for k, v in faster.roi_heads.state_dict().items()}
    assert fast_keys == faster_keys
    # ... and only the proposal source differs
    assert isinstance(fast.rpn, PrecomputedSource) and not isinstance(faster.rpn, PrecomputedSource)


def test_fast_rcnn_uses_roi_pool_and_the_papers_sampling():
    cfg = small_config("fast_rcnn")
    head = cfg.model.roi_head
    assert head.roi_op == "roi_pool"
    assert (head.batch_size_per_image, head.positive_fraction) == (64, 0.25)
    assert (head.fg_iou_thresh, head.bg_iou_thresh_hi, head.bg_iou_thresh_lo) == (0.5, 0.5, 0.1)


def test_precomputed_source_clips_drops_tiny_boxes_and_keeps_the_top_n():
    source = PrecomputedSource(top_n_train=2, top_n_test=3, min_size=2.0)
    images = ImageList(torch.zeros(1, 3, 50, 60), [(50, 60)])
    boxes = torch.tensor([[-5.0, -5.0, 20.0, 20.0], [10.0, 10.0, 11.0, 30.0], [0.0, 0.0, 70.0, 70.0],
                          [5.0, 5.0, 15.0, 15.0], [1.0, 1.0, 9.0, 9.0]])
    source.eval()
    (out,), losses = source(images, proposals=[boxes])
    assert losses == {}
    assert out.tolist() == [[0.0, 0.0, 20.0, 20.0], [0.0, 0.0, 60.0, 50.0], [5.0, 5.0, 15.0, 15.0]]
    source.train()
    assert len(source(images, proposals=[boxes])[0][0]) == 2
    with pytest.raises(ValueError, match="precomputed proposals"):
        source(images)


def test_fast_rcnn_rung_trains_and_detects_from_the_given_proposals(synth_root):
    images, targets, proposals, names = batch(synth_root, n=4, with_proposals=True)
    model = build("fast_rcnn", len(names))
    history = train_steps(model, images, targets, proposals, steps=20)
    assert sum(history[-3:]) < 0.7 * sum(history[:3])
    model.eval()
    with torch.no_grad():
        dets = model(images, proposals=proposals)
        none = model(images, proposals=[p[:0] for p in proposals])
    assert_detection_schema(dets, 4, len(names), [im.shape[-2:] for im in images])
    assert sum(len(d["boxes"]) for d in dets) > 0
    assert all(len(d["boxes"]) == 0 for d in none)  # no proposals, no detections


@pytest.fixture
def spawn_workers(monkeypatch):
    """Proposal workers by spawn: forking a process whose torch threads ran can deadlock the child."""
    monkeypatch.setattr("proposals.cache.get_all_start_methods", lambda: ["spawn"])


def _train_cfg(*overrides):
    return small_config("fast_rcnn", "train.iterations=1", "train.batch_size=2", "train.warmup_iterations=1",
                        *overrides)


def test_missing_proposal_cache_is_an_error_when_compute_is_off(synth_root, tmp_path):
    from detect.train import train

    cfg = _train_cfg("model.precomputed.compute=false", f"model.precomputed.cache_dir={tmp_path / 'nocache'}")
    with pytest.raises(InputError, match="no cache entry"):
        train(cfg, tmp_path / "run", data_root=synth_root)


def test_missing_proposal_cache_is_computed_on_demand_with_a_progress_bar(synth_root, tmp_path, capsys, spawn_workers):
    from detect.train import train

    cache = tmp_path / "cache"
    result = train(_train_cfg(f"model.precomputed.cache_dir={cache}"), tmp_path / "run", data_root=synth_root,
                   progress=True)
    assert result.model_path is not None
    assert len(list(cache.glob("*.npz"))) == 16  # one entry per training image of synth_root
    assert "selective_search proposals" in capsys.readouterr().err
    # a second run reads the cache even with computing switched off
    train(_train_cfg(f"model.precomputed.cache_dir={cache}", "model.precomputed.compute=false"), tmp_path / "run2",
          data_root=synth_root)
