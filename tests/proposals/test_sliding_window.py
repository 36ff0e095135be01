"""Sliding windows: the documented count formula, clipping and torchvision's scale/ratio convention."""

from __future__ import annotations

import math

import numpy as np
import pytest

from proposals.sliding_window import sliding_windows, window_count


@pytest.mark.parametrize(
    "h, w, scales, ratios, stride",
    [(128, 128, (32, 64), (0.5, 1, 2), 16), (100, 130, (24,), (1,), 7), (5, 300, (8, 16, 32), (0.5, 2), 10.5)],
)
def test_count_formula_and_clipping(h, w, scales, ratios, stride):
    boxes = sliding_windows(h, w, scales, ratios, stride)
    n = len(scales) * len(ratios) * math.ceil(h / stride) * math.ceil(w / stride)
    assert boxes.shape == (n, 4) and window_count(h, w, scales, ratios, stride) == n
    assert boxes.dtype == np.float32
    assert boxes[:, 0::2].min() >= 0 and boxes[:, 0::2].max() <= w
    assert boxes[:, 1::2].min() >= 0 and boxes[:, 1::2].max() <= h


def test_scale_is_sqrt_area_and_ratio_is_height_over_width_like_torchvision():
    from torchvision.models.detection.anchor_utils import AnchorGenerator

    scales, ratios = (32.0, 64.0), (0.5, 1.0, 2.0)
    boxes = sliding_windows(400, 400, scales, ratios, stride=400)  # one centre, (200, 200): no clipping
    wh = boxes[:, 2:] - boxes[:, :2]
    np.testing.assert_allclose(np.sqrt(wh[:, 0] * wh[:, 1]), np.repeat(scales, 3), rtol=1e-5)
    np.testing.assert_allclose(wh[:, 1] / wh[:, 0], np.tile(ratios, 2), rtol=1e-5)
    # torchvision rounds its cell anchors to whole pixels; the order is ratio-major there.
    cell = AnchorGenerator.generate_anchors(None, scales, ratios).numpy()
    tv_wh = (cell[:, 2:] - cell[:, :2]).reshape(3, 2, 2).transpose(1, 0, 2).reshape(-1, 2)
    np.testing.assert_allclose(wh, tv_wh, atol=1.0)


def test_empty_image_and_bad_arguments():
    assert sliding_windows(0, 10, (8,), (1,), 4).shape == (0, 4)
    with pytest.raises(ValueError):
        sliding_windows(10, 10, (8,), (1,), 0)
    with pytest.raises(ValueError):
        sliding_windows(10, 10, (-8,), (1,), 4)
