"""Selective Search building blocks: histograms, adjacency, similarities and the merge rule."""

from __future__ import annotations

import numpy as np
import pytest

from proposals import ss_features as F
from proposals.ss_grouping import GroupingState, hierarchical_grouping, pair_similarity, parse_similarity


def test_colour_histograms_match_hand_count():
    # One channel, 2x3 pixels; region 0 = left column, region 1 = the rest.
    image = np.array([[0.0, 0.5, 1.0], [0.02, 0.5, 0.99]], np.float32)[:, :, None]
    labels = np.array([[0, 1, 1], [0, 1, 1]])
    feats = F.pixel_features(image)
    regions = F.initial_regions(labels, feats)
    expected = np.zeros((2, 25), np.float32)
    expected[0, 0] = 1.0  # 0.0 and 0.02 both fall in bin 0 (width 0.04)
    expected[1, 12] = 0.5  # 0.5 * 25 = 12.5 -> bin 12
    expected[1, 24] = 0.5  # 1.0 is put in the last bin, 0.99 -> 24.75 -> 24
    np.testing.assert_allclose(regions.colour, expected)
    np.testing.assert_allclose(regions.texture.sum(axis=1), 1.0, rtol=1e-6)
    assert regions.sizes.tolist() == [2.0, 4.0]
    assert regions.boxes.tolist() == [[0, 0, 1, 2], [1, 0, 3, 2]]


def test_texture_bins_follow_edge_direction():
    # A vertical step from dark (left) to bright (right): the +x orientation (0 deg)
    # responds, the -x orientation (180 deg) does not; 8 orientations x 10 bins.
    image = np.zeros((9, 9, 1), np.float32)
    image[:, 5:] = 1.0
    bins = F.texture_bins(image).reshape(9, 9, 8)
    assert bins.shape == (9, 9, 8)
    assert bins[4, 4, 0] == 9  # the strongest +x response is the top bin
    assert bins[4, 4, 4] == 4 * 10  # 180 deg: zero response -> bin 0 of that column
    assert bins[4, 0, 0] == 0  # far from the edge: no gradient


def test_adjacent_pairs_four_connectivity():
    labels = np.array([[0, 0, 1], [2, 3, 1], [2, 3, 3]])
    pairs = F.adjacent_pairs(labels)
    assert sorted(map(tuple, pairs.tolist())) == [(0, 1), (0, 2), (0, 3), (1, 3), (2, 3)]


def _state(colour, texture, sizes, boxes, image_size, use):
    regions = F.Regions(
        sizes=np.asarray(sizes, np.float64), boxes=np.asarray(boxes, np.float64),
        colour=np.asarray(colour, np.float32), texture=np.asarray(texture, np.float32),
        pairs=np.zeros((0, 2), np.int64),
    )
    return GroupingState(regions, image_size, parse_similarity(use))


def test_similarities_against_hand_computation():
    colour = [[0.5, 0.5, 0.0], [0.2, 0.3, 0.5], [0.0, 0.0, 1.0]]
    texture = [[1.0, 0.0], [0.25, 0.75], [0.5, 0.5]]
    sizes = [10, 20, 30]
    boxes = [[0, 0, 5, 2], [5, 0, 10, 4], [0, 4, 10, 10]]
    a = 100.0
    others = [1, 2]
    # s_colour(0,1) = 0.2 + 0.3 + 0 = 0.5; s_colour(0,2) = 0
    got = pair_similarity(_state(colour, texture, sizes, boxes, a, "C"), 0, others)
    np.testing.assert_allclose(got, [0.5, 0.0])
    # s_texture(0,1) = 0.25; (0,2) = 0.5
    got = pair_similarity(_state(colour, texture, sizes, boxes, a, "T"), 0, others)
    np.testing.assert_allclose(got, [0.25, 0.5])
    # s_size = 1 - (10+20)/100 = 0.7 ; 1 - 40/100 = 0.6
    got = pair_similarity(_state(colour, texture, sizes, boxes, a, "S"), 0, others)
    np.testing.assert_allclose(got, [0.7, 0.6])
    # fill: BB(0,1) = 10x4 = 40 -> 1 - (40-30)/100 = 0.9; BB(0,2) = 10x10 -> 1 - (100-40)/100 = 0.4
    got = pair_similarity(_state(colour, texture, sizes, boxes, a, "F"), 0, others)
    np.testing.assert_allclose(got, [0.9, 0.4])
    got = pair_similarity(_state(colour, texture, sizes, boxes, a, "C+T+S+F"), 0, others)
    np.testing.assert_allclose(got, [0.5 + 0.25 + 0.7 + 0.9, 0.0 + 0.5 + 0.6 + 0.4])


@pytest.mark.parametrize("use", ["C+T+S+F", "T+S+F"])
def test_merged_histogram_equals_histogram_of_union(use):
    rng = np.random.default_rng(3)
    image = rng.random((24, 30, 3)).astype(np.float32)
    labels = np.repeat(np.repeat(np.arange(12).reshape(3, 4), 8, axis=0), 8, axis=1)[:24, :30]
    feats = F.pixel_features(image)
    init = F.initial_regions(labels, feats)
    state = GroupingState(init, image.shape[0] * image.shape[1], parse_similarity(use))
    state.merge(1, 2, 12)  # two horizontally adjacent blocks (regions 0..11 exist)
    union = np.where(labels == 2, 1, labels)
    union = np.unique(union, return_inverse=True)[1].reshape(labels.shape)  # 0..10, old 1+2 -> 1
    ref = F.initial_regions(union, feats)
    parts = ([ref.colour] if "C" in use else []) + [ref.texture]
    np.testing.assert_allclose(state.hist[12], np.concatenate(parts, axis=1)[1], atol=1e-6)
    assert state.geo[12] == [*ref.boxes[1].tolist(), ref.sizes[1]]


def test_grouping_forms_every_region_once():
    labels = np.array([[0, 0, 1, 1], [2, 2, 3, 3], [2, 4, 4, 3]])
    image = np.random.default_rng(0).random((3, 4, 3)).astype(np.float32)
    init = F.initial_regions(labels, F.pixel_features(image))
    boxes = hierarchical_grouping(init, 12.0, parse_similarity("C+T+S+F"))
    assert boxes.shape == (2 * 5 - 1, 4)  # R initial + R-1 merges
    assert boxes[-1].tolist() == [0, 0, 4, 3]  # the last region is the whole image
    np.testing.assert_array_equal(boxes[:5], init.boxes)


def test_parse_similarity_rejects_unknown_letters():
    assert parse_similarity("t+s+f") == frozenset("TSF")
    with pytest.raises(ValueError, match="combination of C, T, S, F"):
        parse_similarity("C+X")
