"""The shared-sort Felzenszwalb segmentation against scikit-image's ``felzenszwalb`` (the oracle)."""

import numpy as np
import pytest
import skimage.data
from skimage.segmentation import felzenszwalb

from proposals.felzenszwalb import edge_weights, felzenszwalb_segmentations
from proposals.selective_search import smooth_for_segmentation
from proposals.ss_features import convert_colour_space


def _reference(image: np.ndarray, k: float) -> np.ndarray:
    return felzenszwalb(image, scale=k, sigma=0, min_size=max(1, int(k)), channel_axis=-1)


@pytest.mark.parametrize("space", ["hsv", "lab", "I"])
def test_equals_scikit_image_label_for_label_on_a_photo(space):
    # A real photo (cropped for speed): many segments, many equal edge weights in flat areas.
    photo = skimage.data.chelsea()[:160, 100:300]
    smoothed = smooth_for_segmentation(convert_colour_space(photo, space))
    ks = (50, 100, 150, 300)
    for k, labels in zip(ks, felzenszwalb_segmentations(smoothed, ks)):
        ref = _reference(smoothed, k)
        assert labels.dtype == np.int64 and labels.shape == photo.shape[:2]
        assert k > 50 or ref.max() > 3  # a real segmentation, not one region
        np.testing.assert_array_equal(labels, ref)


@pytest.mark.parametrize("shape", [(1, 7, 3), (7, 1, 3), (2, 2, 3), (13, 9, 1), (40, 31, 3)])
def test_equals_scikit_image_on_odd_shapes_and_random_values(shape):
    rng = np.random.default_rng(sum(shape))
    image = rng.random(shape)
    image[: shape[0] // 2] = 0.25  # a flat block: ties between equal weights
    for k in (1, 5, 50):
        (labels,) = felzenszwalb_segmentations(image, [k])
        np.testing.assert_array_equal(labels, _reference(image, k))


def test_labels_are_numbered_by_first_pixel_and_all_present():
    image = np.zeros((6, 8, 3))
    image[:, 4:] = 1.0  # two flat halves, a strong edge between them
    (labels,) = felzenszwalb_segmentations(image, [1])
    assert labels[:, :4].tolist() == [[0] * 4] * 6
    assert labels[:, 4:].tolist() == [[1] * 4] * 6


def test_edge_weights_are_euclidean_colour_distances_in_skimage_order():
    image = np.zeros((2, 3, 2))
    image[0, 1] = (3.0, 4.0)  # pixel (row 0, col 1) differs from the rest by 5
    w = edge_weights(image)
    # right edges (2 rows x 2), down (1 x 3), down-right (1 x 2), up-right (1 x 2)
    assert w.tolist() == [5, 5, 0, 0] + [0, 5, 0] + [0, 5] + [5, 0]
