"""Felzenszwalb-Huttenlocher segmentation for several k at once, label-for-label equal to scikit-image's.

Selective Search segments every colour space with several thresholds k (fast
mode: 50 and 100). ``skimage.segmentation.felzenszwalb`` rebuilds and re-sorts
the ~4 HW edges of the 8-connected pixel grid on every call, and that sort
(with the gathers around it) is more than half of its time; yet it is the same
for every k of one image. ``felzenszwalb_segmentations`` computes the edge
weights and their order once, then runs one compiled union-find pass per k.

It follows scikit-image's ``_felzenszwalb_cython`` (0.26) to the bit, so
``felzenszwalb_segmentations(img, ks)[i]`` equals
``felzenszwalb(img, scale=ks[i], sigma=0, min_size=int(ks[i]))`` exactly
(tests/proposals/test_felzenszwalb.py holds it to that, as the oracle):

* edge weights: Euclidean colour distance, ``sqrt(sum(d * d))`` over channels,
  float64, edges listed right, down, down-right, up-right; the same
  ``np.argsort`` call, so equal weights are visited in the same order;
* merge rule (the paper's): join when ``w < min(Int(C1) + k'/|C1|, Int(C2) + k'/|C2|)``
  with ``k' = k / 255`` (the image is in [0, 1]); the two thresholds are rounded
  to float32 first, as skimage's ``cdef float`` does;
* a second pass over the same sorted edges joins any pair where either side is
  smaller than ``min_size``;
* labels 0..R-1 numbered by each segment's first pixel in raster order (skimage's
  union-find always keeps the smaller pixel index as the root, and
  ``np.unique`` numbers the roots in order).

Shapes: the image is (H, W, C) float64 (already smoothed; Selective Search
smooths once per colour space with sigma 0.8); label maps are (H, W) int64.
"""

from __future__ import annotations

import numpy as np
from numba import njit


def edge_weights(image: np.ndarray) -> np.ndarray:
    """(H, W, C) float64 -> (E,) float64 colour distances of the 8-connected grid's edges.

    Order (as skimage): H*(W-1) right, (H-1)*W down, (H-1)*(W-1) down-right,
    (H-1)*(W-1) up-right edges, each block in raster order of its upper-left pixel.
    """
    def dist(a, b):
        d = a - b
        return np.sqrt(np.sum(d * d, axis=-1)).ravel()

    return np.hstack([
        dist(image[:, 1:], image[:, :-1]),
        dist(image[1:, :], image[:-1, :]),
        dist(image[1:, 1:], image[:-1, :-1]),
        dist(image[1:, :-1], image[:-1, 1:]),
    ])


@njit(cache=True, nogil=True)
def _root(parent, x):
    """Root of x's tree, halving the path on the way (roots are each tree's smallest index)."""
    while parent[x] != x:
        parent[x] = parent[parent[x]]
        x = parent[x]
    return x


@njit(cache=True, nogil=True)
def _ends(e, height, width):
    """Pixel indices (p, q) of edge e in ``edge_weights`` order."""
    right = height * (width - 1)
    down = (height - 1) * width
    diag = (height - 1) * (width - 1)
    if e < right:
        r, c = e // (width - 1), e % (width - 1)
        return r * width + c + 1, r * width + c
    e -= right
    if e < down:
        return e + width, e
    e -= down
    if e < diag:
        r, c = e // (width - 1), e % (width - 1)
        return (r + 1) * width + c + 1, r * width + c
    e -= diag
    r, c = e // (width - 1), e % (width - 1)
    return r * width + c + 1, (r + 1) * width + c


@njit(cache=True, nogil=True)
def _segment_sorted(order, sorted_weights, height, width, scale, min_size):
    """One k: union-find over edges in ``order`` (weights ``sorted_weights``) -> (H*W,) int64 labels."""
    n = height * width
    parent = np.arange(n)
    size = np.ones(n, np.int64)
    internal = np.zeros(n)  # Int(C): the weight of the last edge that merged into C
    for i in range(order.size):
        e = order[i]
        p, q = _ends(e, height, width)
        a, b = _root(parent, p), _root(parent, q)
        if a == b:
            continue
        # skimage stores both thresholds in C floats (float32) before comparing.
        t_a = np.float32(internal[a] + scale / size[a])
        t_b = np.float32(internal[b] + scale / size[b])
        w = sorted_weights[i]
        if w < min(t_a, t_b):
            lo, hi = min(a, b), max(a, b)
            parent[hi] = lo
            size[lo] = size[a] + size[b]
            internal[lo] = w
    for i in range(order.size):  # join segments smaller than min_size to a neighbour
        p, q = _ends(order[i], height, width)
        a, b = _root(parent, p), _root(parent, q)
        if a != b and (size[a] < min_size or size[b] < min_size):
            lo, hi = min(a, b), max(a, b)
            parent[hi] = lo
            size[lo] = size[a] + size[b]
    labels = np.empty(n, np.int64)
    count = 0
    for x in range(n):  # roots are their segment's first pixel, so raster order numbers them
        r = _root(parent, x)
        if r == x:
            labels[x] = count
            count += 1
        else:
            labels[x] = labels[r]
    return labels


def felzenszwalb_segmentations(image: np.ndarray, ks) -> list[np.ndarray]:
    """(H, W, C) float64 smoothed image, thresholds ks -> one (H, W) int64 label map per k.

    Each equals ``skimage.segmentation.felzenszwalb(image, scale=k, sigma=0,
    min_size=max(1, int(k)))``; the edge sort is shared by all ks.
    """
    image = np.asarray(image, np.float64)
    if image.ndim == 2:
        image = image[:, :, None]
    height, width = image.shape[:2]
    weights = edge_weights(image)
    order = np.argsort(weights)  # the call skimage makes: same order for equal weights
    sorted_weights = weights[order]
    return [
        _segment_sorted(order, sorted_weights, height, width, float(k) / 255.0, max(1, int(k))).reshape(height, width)
        for k in ks
    ]


def warm_up() -> None:
    """Compile (or load from numba's on-disk cache) the union-find kernel in this process.

    Called before forking proposal workers, so that they inherit the compiled
    code instead of each compiling it (about 1.5 s on a cold cache).
    """
    felzenszwalb_segmentations(np.zeros((2, 2, 3)), [1])


__all__ = ["edge_weights", "felzenszwalb_segmentations", "warm_up"]
