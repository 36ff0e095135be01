"""Selective Search (Uijlings, van de Sande, Gevers, Smeulders; IJCV 2013).

    image (H, W, 3) uint8 RGB
      -> for each colour space: per-pixel colour/texture bins      (ss_features)
      -> for each k: felzenszwalb segmentation + region statistics  (ss_features)
      -> for each similarity combination: hierarchical grouping     (ss_grouping)
      -> rank (hierarchy position x seeded random), pool, de-duplicate
      -> (N, 4) float32 [x1, y1, x2, y2], 0-based, x2/y2 exclusive, best first

Diversification (section 3.3) runs every combination of colour space, k and
similarity. The paper's two settings:

* ``mode="fast"``: colour spaces HSV and Lab; k in {50, 100}; similarities
  C+T+S+F and T+S+F (8 strategies on 4 segmentations);
* ``mode="quality"``: HSV, Lab, rgI, H, I; k in {50, 100, 150, 300};
  C+T+S+F, T+S+F, F, S (80 strategies on 20 segmentations).

Felzenszwalb's method runs on the image converted to that colour space (each
channel in [0, 1], ``k`` scaled by 1/255 so that it means what it means on
0-255 images), with sigma 0.8 and minimum segment size k, as in the authors'
code. The segmentation is scikit-image's ``felzenszwalb``, label for label, but
computed by ``proposals.felzenszwalb``, which sorts the grid's edges once for
all k of a colour space (about 3x faster for the fast mode's two k). Ranking (section 4.1): within a strategy the last region formed (the whole
image) has position 1, the one before it position 2, and so on; each position is
multiplied by a uniform random number from ``numpy.random.default_rng(seed)``;
all strategies are pooled, sorted ascending, and a box seen again later is
dropped. The same image, parameters and seed give the same boxes. Boxes with a
side under ``min_size`` are dropped last (default: the authors' 20 px on ~500 px
VOC images, scaled to the image's longer side).

Input images (``as_rgb_uint8``): (H, W) grayscale and (H, W, 1) are repeated to
three channels; (H, W, 4) RGBA drops alpha; uint16 is divided by 257; float and
other integer types are taken as [0, 1] and [0, 255] respectively and clipped;
bool as 0/255. An image with fewer than 2 pixels returns no boxes.
"""

from __future__ import annotations

import numpy as np

from proposals.felzenszwalb import felzenszwalb_segmentations
from proposals.ss_features import COLOUR_SPACES, convert_colour_space, initial_regions, pixel_features
from proposals.ss_grouping import hierarchical_grouping, parse_similarity

#: The paper's settings (section 5.1, table 5 "Selective Search Fast/Quality").
MODES: dict[str, dict[str, tuple]] = {
    "fast": {
        "colour_spaces": ("hsv", "lab"),
        "ks": (50, 100),
        "similarities": ("C+T+S+F", "T+S+F"),
    },
    "quality": {
        "colour_spaces": ("hsv", "lab", "rgI", "H", "I"),
        "ks": (50, 100, 150, 300),
        "similarities": ("C+T+S+F", "T+S+F", "F", "S"),
    },
}

#: Default minimum box side: the authors' 20 px on ~500 px VOC images, as a fraction of the longer side.
MIN_BOX_FRACTION = 20.0 / 500.0

#: Felzenszwalb's Gaussian pre-smoothing, as in the paper's code.
FELZENSZWALB_SIGMA = 0.8


def as_rgb_uint8(image) -> np.ndarray:
    """Any supported image array -> (H, W, 3) uint8 RGB (see the module docstring for the rules).

    Raises ValueError for anything that is not an image: wrong number of
    dimensions or channels, or a non-numeric dtype.
    """
    arr = np.asarray(image)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ValueError(f"selective_search: expected a numeric image array, got dtype {arr.dtype}")
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
        raise ValueError(
            f"selective_search: expected an (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) image, "
            f"got shape {arr.shape}"
        )
    if arr.shape[2] == 4:
        arr = arr[:, :, :3]  # RGBA: alpha is dropped
    if arr.dtype == bool:
        arr = arr.astype(np.uint8) * 255
    elif arr.dtype == np.uint16:
        arr = (arr.astype(np.float64) / 257.0).round()
    elif np.issubdtype(arr.dtype, np.floating):
        arr = np.nan_to_num(arr.astype(np.float64), nan=0.0) * 255.0
    if arr.dtype != np.uint8:
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    return np.ascontiguousarray(arr)


def _resize_for_segmentation(image: np.ndarray, max_side: int | None) -> tuple[np.ndarray, float]:
    """Shrink so the longer side is ``max_side`` (never enlarge) -> (image, scale factor)."""
    h, w = image.shape[:2]
    if not max_side or max(h, w) <= max_side:
        return image, 1.0
    import cv2

    scale = max_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), scale


def smooth_for_segmentation(space_image: np.ndarray) -> np.ndarray:
    """(H, W, C) float32 colour-space image -> (H, W, 3) float64, Gaussian-smoothed (sigma 0.8).

    This is the smoothing ``felzenszwalb`` would do itself (same kernel: radius
    ``int(4 * sigma + 0.5)``, mirror borders), done once per colour space and shared
    by every k; ``segment`` then segments with sigma 0 (no second smoothing).
    Single-channel spaces (H, I) become three equal channels, as in the authors'
    code (every colour distance is then scaled by sqrt(3)).
    """
    import cv2

    img = space_image.astype(np.float64)
    if img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    radius = int(4.0 * FELZENSZWALB_SIGMA + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-(x**2) / (2 * FELZENSZWALB_SIGMA**2))
    kernel /= kernel.sum()
    return cv2.sepFilter2D(img, cv2.CV_64F, kernel, kernel, borderType=cv2.BORDER_REFLECT)


def segment(smoothed: np.ndarray, ks) -> list[np.ndarray]:
    """Felzenszwalb (threshold k, minimum size k) on a ``smooth_for_segmentation`` image, for each k.

    -> one (H, W) int64 label map (0..R-1, every label present) per k, each equal to
    ``skimage.segmentation.felzenszwalb(smoothed, scale=k, sigma=0, min_size=k)``;
    ``proposals.felzenszwalb`` sorts the pixel-grid edges once for all ks.
    """
    return felzenszwalb_segmentations(smoothed, ks)


def selective_search(
    image,
    mode: str = "fast",
    *,
    max_side: int | None = None,
    min_size: float | None = None,
    seed: int = 0,
    colour_spaces: tuple[str, ...] | None = None,
    ks: tuple[float, ...] | None = None,
    similarities: tuple[str, ...] | None = None,
) -> np.ndarray:
    """Selective Search proposals for one image -> (N, 4) float32, best first.

    Args:
        image: (H, W, 3) uint8 RGB (other layouts/dtypes converted, see module doc).
        mode: "fast" or "quality" (the paper's settings); ``colour_spaces``, ``ks``
            and ``similarities`` override the mode's lists one by one.
        max_side: if set, segment a copy shrunk so its longer side is at most this;
            boxes are mapped back to the original pixel grid.
        min_size: drop boxes whose width or height (original pixels) is below this.
            None = the authors' rule (boxes under 20 px on ~500 px VOC images are
            dropped) scaled to this image: ``20 * max(H, W) / 500`` (5.1 px at 128 px).
        seed: seed of the ranking's random numbers.

    Returns:
        (N, 4) float32 ``[x1, y1, x2, y2]``, 0-based, x2/y2 exclusive, no duplicates.
    """
    if mode not in MODES:
        raise ValueError(f"selective_search: mode must be one of {sorted(MODES)}, got {mode!r}")
    if max_side is not None and max_side < 1:
        raise ValueError(f"selective_search: max_side must be >= 1 or None, got {max_side}")
    rgb = as_rgb_uint8(image)
    height, width = rgb.shape[:2]
    if height * width < 2:
        return np.zeros((0, 4), np.float32)
    spaces = tuple(colour_spaces or MODES[mode]["colour_spaces"])
    for space in spaces:
        if space not in COLOUR_SPACES:
            raise ValueError(f"selective_search: unknown colour space {space!r}; use {COLOUR_SPACES}")
    k_values = tuple(ks or MODES[mode]["ks"])
    sims = [parse_similarity(s) for s in (similarities or MODES[mode]["similarities"])]

    small, scale = _resize_for_segmentation(rgb, max_side)
    image_size = float(small.shape[0] * small.shape[1])
    rng = np.random.default_rng(seed)
    all_boxes, all_keys = [], []
    for space in spaces:
        space_image = convert_colour_space(small, space)
        feats = pixel_features(space_image)
        for labels in segment(smooth_for_segmentation(space_image), k_values):
            regions = initial_regions(labels, feats)
            for use in sims:
                boxes = hierarchical_grouping(regions, image_size, use)
                # Position 1 = the last region formed; times a uniform random number.
                position = np.arange(len(boxes), 0, -1, dtype=np.float64)
                all_keys.append(position * rng.random(len(boxes)))
                all_boxes.append(boxes)
    if min_size is None:
        min_size = MIN_BOX_FRACTION * max(height, width)
    return _rank_and_filter(all_boxes, all_keys, scale, height, width, min_size)


def _rank_and_filter(all_boxes, all_keys, scale, height, width, min_size) -> np.ndarray:
    """Pool strategies, sort by key (stable), drop later duplicates and boxes below min_size."""
    boxes = np.concatenate(all_boxes)
    order = np.argsort(np.concatenate(all_keys), kind="stable")
    boxes = boxes[order]
    # Duplicates are judged on the segmentation grid, where boxes are exact integers:
    # one int64 key per box (coordinates < 2**15) makes this a 1-D unique.
    ib = boxes.astype(np.int64)
    if len(ib) and ib.max() < (1 << 15):
        _, first = np.unique((ib[:, 0] << 45) | (ib[:, 1] << 30) | (ib[:, 2] << 15) | ib[:, 3], return_index=True)
    else:  # a gigantic image: the slower row-wise unique
        _, first = np.unique(ib, axis=0, return_index=True)
    boxes = boxes[np.sort(first)]
    if scale != 1.0:
        boxes = boxes / scale
        boxes[:, [0, 2]] = np.clip(boxes[:, [0, 2]], 0, width)
        boxes[:, [1, 3]] = np.clip(boxes[:, [1, 3]], 0, height)
    if min_size > 0:
        keep = ((boxes[:, 2] - boxes[:, 0]) >= min_size) & ((boxes[:, 3] - boxes[:, 1]) >= min_size)
        boxes = boxes[keep]
    return boxes.astype(np.float32)
