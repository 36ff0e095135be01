"""Selective Search end to end: object recovery, ranking, determinism, conventions, bad input."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from eval.iou import box_iou
from proposals.selective_search import selective_search
from proposals.selective_search import as_rgb_uint8

FAST_ONE = {"colour_spaces": ("hsv",), "ks": (50,), "similarities": ("C+T+S+F",)}


def _flat_shapes() -> tuple[np.ndarray, np.ndarray]:
    """A 120x160 grey image with flat-coloured shapes; returns (image, their boxes (G, 4))."""
    img = np.full((120, 160, 3), 190, np.uint8)
    img[10:40, 10:50] = (220, 30, 30)  # rectangle
    cv2.circle(img, (90, 45), 22, (20, 140, 40), -1)  # circle: x 68..112, y 23..67
    tri = np.array([[125, 110], [155, 110], [140, 75]], np.int32)
    cv2.fillPoly(img, [tri], (30, 40, 200))
    img[75:105, 15:60] = (240, 210, 20)
    img[85:95, 80:100] = (120, 0, 160)  # a small one
    gt = np.array([[10, 10, 50, 40], [68, 23, 113, 68], [125, 75, 156, 111], [15, 75, 60, 105],
                   [80, 85, 100, 95]], np.float64)
    return img, gt


def test_flat_coloured_shapes_are_recovered():
    img, gt = _flat_shapes()
    boxes = selective_search(img)
    assert (box_iou(gt, boxes).max(axis=1) >= 0.9).all()


def test_box_convention():
    img, _ = _flat_shapes()
    boxes = selective_search(img)
    assert boxes.dtype == np.float32 and boxes.ndim == 2 and boxes.shape[1] == 4
    assert (boxes[:, 0] < boxes[:, 2]).all() and (boxes[:, 1] < boxes[:, 3]).all()
    assert boxes[:, [0, 1]].min() >= 0 and boxes[:, 2].max() <= 160 and boxes[:, 3].max() <= 120
    np.testing.assert_array_equal(boxes, np.round(boxes))  # pixel edges: x2/y2 exclusive
    assert [0, 0, 160, 120] in boxes.tolist()  # the last region formed covers the image
    assert len(np.unique(boxes, axis=0)) == len(boxes)  # no duplicates


def test_same_seed_same_boxes_other_seed_other_order():
    img, _ = _flat_shapes()
    a, b = selective_search(img, seed=7), selective_search(img, seed=7)
    np.testing.assert_array_equal(a, b)
    c = selective_search(img, seed=8)
    assert not np.array_equal(a, c)
    assert sorted(map(tuple, a.tolist())) == sorted(map(tuple, c.tolist()))  # same set, other ranking


def test_ranking_is_hierarchy_position_times_seeded_random():
    # One strategy: the order must be argsort(position * U(0,1)) with the seed's generator,
    # position 1 being the last region formed.
    from proposals import ss_features as F
    from proposals.selective_search import segment, smooth_for_segmentation
    from proposals.ss_grouping import hierarchical_grouping, parse_similarity

    img, _ = _flat_shapes()
    space = F.convert_colour_space(img, "hsv")
    regions = F.initial_regions(segment(smooth_for_segmentation(space), [50])[0], F.pixel_features(space))
    hier = hierarchical_grouping(regions, float(img.shape[0] * img.shape[1]), parse_similarity("C+T+S+F"))
    key = np.arange(len(hier), 0, -1) * np.random.default_rng(5).random(len(hier))
    ranked = hier[np.argsort(key, kind="stable")]
    _, first = np.unique(ranked, axis=0, return_index=True)
    expected = ranked[np.sort(first)]
    got = selective_search(img, seed=5, min_size=0, **FAST_ONE)
    np.testing.assert_array_equal(got, expected.astype(np.float32))


def test_quality_mode_contains_every_fast_mode_box():
    # The quality setting runs a superset of the fast strategies and duplicates are exact.
    img, _ = _flat_shapes()
    img = cv2.resize(img, (80, 60), interpolation=cv2.INTER_AREA)
    fast = set(map(tuple, selective_search(img, "fast").tolist()))
    quality = set(map(tuple, selective_search(img, "quality").tolist()))
    assert fast <= quality and len(quality) > len(fast)


def test_min_size_and_max_side():
    img, gt = _flat_shapes()
    boxes = selective_search(img, min_size=30)
    assert ((boxes[:, 2:] - boxes[:, :2]) >= 30).all()
    big = cv2.resize(img, (320, 240), interpolation=cv2.INTER_NEAREST)
    small = selective_search(big, max_side=160, min_size=0)
    np.testing.assert_array_equal(small, selective_search(img, min_size=0) * 2)  # mapped back to 320x240
    assert (box_iou(gt * 2, small).max(axis=1) >= 0.9).all()


def test_image_conversions():
    img, _ = _flat_shapes()
    ref = selective_search(img)
    np.testing.assert_array_equal(selective_search(np.dstack([img, np.full(img.shape[:2], 255, np.uint8)])), ref)
    np.testing.assert_array_equal(selective_search(img.astype(np.float32) / 255.0), ref)
    np.testing.assert_array_equal(selective_search(img.astype(np.uint16) * 257), ref)
    gray = img[:, :, 1]
    np.testing.assert_array_equal(selective_search(gray), selective_search(np.dstack([gray] * 3)))
    assert as_rgb_uint8(np.array([[True, False]])).tolist() == [[[255] * 3, [0] * 3]]


@pytest.mark.parametrize("shape", [(0, 0, 3), (1, 1, 3), (0, 5), (1, 1)])
def test_empty_and_single_pixel_images_give_no_boxes(shape):
    boxes = selective_search(np.zeros(shape, np.uint8))
    assert boxes.shape == (0, 4) and boxes.dtype == np.float32


@pytest.mark.parametrize("bad", [np.zeros((4, 4, 3, 2)), np.zeros((4, 4, 5)), np.zeros(7),
                                 np.array([["a", "b"]]), np.array([[None]])])
def test_non_images_raise_value_error(bad):
    with pytest.raises(ValueError, match="selective_search"):
        selective_search(bad)


def test_bad_options_raise_value_error():
    img, _ = _flat_shapes()
    with pytest.raises(ValueError, match="mode"):
        selective_search(img, mode="slow")
    with pytest.raises(ValueError, match="colour space"):
        selective_search(img, colour_spaces=("xyz",))


@pytest.mark.parametrize("space", ["lab", "H"])
def test_shared_smoothing_gives_scikit_image_felzenszwalb_segmentation(space):
    # Oracle: skimage's felzenszwalb with its own sigma-0.8 smoothing, on the same colour-space image.
    from skimage.segmentation import felzenszwalb

    from proposals import ss_features as F
    from proposals.selective_search import segment, smooth_for_segmentation

    img, _ = _flat_shapes()
    noisy = np.clip(img + np.random.default_rng(0).normal(0, 12, img.shape), 0, 255).astype(np.uint8)
    space_img = F.convert_colour_space(noisy, space).astype(np.float64)
    if space_img.shape[2] == 1:
        space_img = np.repeat(space_img, 3, axis=2)
    got = segment(smooth_for_segmentation(F.convert_colour_space(noisy, space)), (50, 100))
    for k, labels in zip((50, 100), got):
        np.testing.assert_array_equal(labels, felzenszwalb(space_img, scale=k, sigma=0.8, min_size=k))


def test_flat_image_gives_the_whole_image_once():
    boxes = selective_search(np.full((50, 60, 3), 120, np.uint8), "quality")
    assert boxes.tolist() == [[0, 0, 60, 50]]
