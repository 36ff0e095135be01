"""Sliding windows: the window grid the rung classifies, and the rung end to end."""

from __future__ import annotations

import math

import torch
from torchvision.models.detection.image_list import ImageList

from detect.detectors.sliding_window import SlidingWindowSource
from tests.detect.ladder_util import assert_detection_schema, batch, build, small_config, train_steps


def test_window_count_follows_the_formula():
    """scales x ratios windows centred every ``stride`` px: S * R * ceil(H / stride) * ceil(W / stride)."""
    source = SlidingWindowSource([16.0, 32.0], [0.5, 1.0, 2.0], stride=8.0)
    images = ImageList(torch.zeros(2, 3, 128, 128), [(128, 96), (60, 100)])
    windows, losses = source(images)
    assert losses == {}
    assert len(windows[0]) == 2 * 3 * math.ceil(128 / 8) * math.ceil(96 / 8)
    assert len(windows[1]) == 2 * 3 * math.ceil(60 / 8) * math.ceil(100 / 8)
    # windows live in the resized image's pixels and stay inside it
    assert float(windows[1][:, 2].max()) <= 100 and float(windows[1][:, 3].max()) <= 60
    assert float(windows[1][:, :2].min()) >= 0


def test_window_shapes_match_scale_and_ratio():
    source = SlidingWindowSource([32.0], [0.5, 2.0], stride=64.0)
    windows = source.windows(256, 256)
    inner = windows[(windows[:, 0] > 0) & (windows[:, 1] > 0) & (windows[:, 2] < 256) & (windows[:, 3] < 256)]
    w, h = inner[:, 2] - inner[:, 0], inner[:, 3] - inner[:, 1]
    torch.testing.assert_close(w * h, torch.full_like(w, 32.0 ** 2))  # scale = sqrt(area)
    assert set(torch.round(h / w, decimals=3).tolist()) == {0.5, 2.0}  # ratio = height / width


def test_ladder_windows_cover_the_synthetic_objects_and_a_finer_stride_covers_more(synth_root):
    """Most objects have a window at IoU >= 0.5 (trainable positives); a denser grid finds more."""
    from torchvision.ops import box_iou

    p = small_config("sliding_window").model.windows
    _, targets, _, _ = batch(synth_root, n=8)

    def coverage(stride):
        windows = SlidingWindowSource(p.scales, p.ratios, stride).windows(128, 128)
        best = torch.cat([box_iou(t["boxes"], windows).max(dim=1).values for t in targets])
        return float((best >= 0.5).float().mean())

    assert coverage(p.stride) >= 0.6  # 0.81 over 100 synthetic test images
    assert coverage(p.stride / 2) > coverage(p.stride)


def test_sliding_window_rung_trains_and_detects(synth_root):
    images, targets, _, names = batch(synth_root, n=4)
    model = build("sliding_window", len(names), "model.crop.size=24", "model.crop.batch_size=64",
                  "model.windows.stride=16")
    assert model.backbone is None and isinstance(model.rpn, SlidingWindowSource)
    history = train_steps(model, images, targets, None, steps=20)
    assert sum(history[-3:]) < 0.7 * sum(history[:3])
    model.eval()
    with torch.no_grad():
        dets, times = model.detect_with_timing(images)
    assert_detection_schema(dets, 4, len(names), [im.shape[-2:] for im in images])
    assert times.network > 0
