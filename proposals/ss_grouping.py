"""Selective Search, part 2: the similarities and the hierarchical grouping.

Uijlings et al. (IJCV 2013), sections 3.1-3.2 and algorithm 1. Starting from the
initial regions, the two most similar neighbours are merged until one region is
left; every region ever formed is a proposal. The similarity is a sum of any of

* colour  s_c = sum_k min(c_i^k, c_j^k) over L1-normalised 25-bin-per-channel histograms;
* texture s_t = the same intersection over the 8-orientation x 10-bin histograms;
* size    s_s = 1 - (size_i + size_j) / size(image)      (small regions merge early);
* fill    s_f = 1 - (size(BB_ij) - size_i - size_j) / size(image)
  where BB_ij is the box around both regions (regions that fit together merge early).

A merged region's histograms are the size-weighted mean of its parts'
(``(size_i * C_i + size_j * C_j) / (size_i + size_j)``), equal to the histogram of
the union's pixels, so no pixel is visited again after the first histograms.

Speed: a heap of (-similarity, i, j) with lazy invalidation (entries naming a
region that has been merged away are skipped when popped), sparse neighbour
sets, and one vectorised similarity call per merge for all of the new
region's neighbours.
"""

from __future__ import annotations

import heapq

import numpy as np

from proposals.ss_features import Regions

#: Letters of the paper's similarity combinations: C colour, T texture, S size, F fill.
SIMILARITY_LETTERS = "CTSF"


def parse_similarity(spec: str) -> frozenset[str]:
    """``"C+T+S+F"`` (or ``"CTSF"``) -> frozenset of letters; ValueError on anything else."""
    letters = [c for c in spec.upper() if c not in "+ "]
    if not letters or any(c not in SIMILARITY_LETTERS for c in letters):
        raise ValueError(f"similarity {spec!r}: use a combination of C, T, S, F such as 'C+T+S+F'")
    return frozenset(letters)


def pair_similarity(state: "GroupingState", i: int, others: np.ndarray) -> np.ndarray:
    """Similarity of region ``i`` to each region in ``others`` (K,) -> (K,) float64."""
    geo, g = state.geo[others], state.geo[i]  # (K, 5) and (5,): x1, y1, x2, y2, size
    if state.hist is not None:
        # s_colour + s_texture in one intersection over the concatenated histograms.
        s = np.minimum(state.hist[others], state.hist[i]).sum(axis=1, dtype=np.float64)
    else:
        s = np.zeros(len(others), np.float64)
    if state.use_size or state.use_fill:
        s += _size_fill(state, geo[:, 4] + g[4], geo, g)
    return s


def _size_fill(state: "GroupingState", both: np.ndarray, ga: np.ndarray, gb: np.ndarray) -> np.ndarray:
    """s_size and/or s_fill for pairs with joint size ``both`` and boxes in ``ga``/``gb``."""
    if not state.use_fill:
        return 1.0 - both / state.image_size
    wh = np.maximum(ga[..., 2:4], gb[..., 2:4]) - np.minimum(ga[..., :2], gb[..., :2])
    bb = wh[..., 0] * wh[..., 1]  # area of the box around both regions
    if state.use_size:  # (1 - both/A) + (1 - (bb - both)/A) = 2 - bb/A
        return 2.0 - bb / state.image_size
    return 1.0 - (bb - both) / state.image_size


class GroupingState:
    """Arrays for all 2R-1 regions a grouping can create; rows 0..R-1 are the initial ones.

    ``geo`` (2R-1, 5) float64 holds box and size; ``hist`` (2R-1, D) float32 holds
    the colour and/or texture histograms side by side (only those the similarity
    uses), so one weighted sum merges both and one intersection compares both.
    """

    def __init__(self, init: Regions, image_size: float, use: frozenset[str]):
        n = len(init.sizes)
        total = 2 * n - 1
        self.image_size = float(image_size)
        self.use_size, self.use_fill = "S" in use, "F" in use
        self.geo = np.zeros((total, 5), np.float64)
        self.geo[:n, :4] = init.boxes
        self.geo[:n, 4] = init.sizes
        self.sizes_list = init.sizes.tolist()  # Python floats: cheaper than numpy scalars here
        parts = [h for letter, h in (("C", init.colour), ("T", init.texture)) if letter in use]
        self.hist = None
        if parts:
            self.hist = np.empty((total, sum(p.shape[1] for p in parts)), np.float32)
            self.hist[:n] = np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]

    def merge(self, i: int, j: int, t: int) -> None:
        """Row t := the union of rows i and j (size-weighted histogram means, box union)."""
        geo = self.geo
        si, sj = self.sizes_list[i], self.sizes_list[j]
        st = si + sj
        self.sizes_list.append(st)
        np.minimum(geo[i, :2], geo[j, :2], out=geo[t, :2])
        np.maximum(geo[i, 2:4], geo[j, 2:4], out=geo[t, 2:4])
        geo[t, 4] = st
        if self.hist is not None:
            hist = self.hist
            np.add(hist[i] * np.float32(si / st), hist[j] * np.float32(sj / st), out=hist[t])

    @property
    def boxes(self) -> np.ndarray:
        return self.geo[:, :4]


def hierarchical_grouping(init: Regions, image_size: float, similarity: frozenset[str]) -> np.ndarray:
    """Run algorithm 1 of the paper -> (2R-1, 4) float64 boxes in creation order.

    Row k is the k-th region formed: the R initial regions first, then one row per
    merge; the last row is the region that covers everything (when the adjacency
    graph is connected, as it is for a segmentation of one image).
    """
    n = len(init.sizes)
    state = GroupingState(init, image_size, similarity)
    alive = np.zeros(2 * n - 1, bool)
    alive[:n] = True
    neighbours: list[set[int] | None] = [set() for _ in range(n)]
    pairs = init.pairs
    heap: list[tuple[float, int, int]] = []
    if len(pairs):
        for a, b in pairs.tolist():
            neighbours[a].add(b)
            neighbours[b].add(a)
        sims = _pairs_similarity(state, pairs)
        heap = list(zip((-sims).tolist(), pairs[:, 0].tolist(), pairs[:, 1].tolist()))
        heapq.heapify(heap)
    t = n
    while heap:
        _, i, j = heapq.heappop(heap)
        if not (alive[i] and alive[j]):
            continue  # a stale entry: one of the two was merged away already
        state.merge(i, j, t)
        alive[i] = alive[j] = False
        alive[t] = True
        nb = neighbours[i] | neighbours[j]
        nb.discard(i)
        nb.discard(j)
        neighbours[i] = neighbours[j] = None
        for k in nb:
            s = neighbours[k]
            s.discard(i)
            s.discard(j)
            s.add(t)
        neighbours.append(nb)
        if nb:
            others = list(nb)
            sims = pair_similarity(state, t, np.array(others))
            for s, k in zip((-sims).tolist(), others):
                heapq.heappush(heap, (s, k, t))
        t += 1
    return state.boxes[:t]


def _pairs_similarity(state: GroupingState, pairs: np.ndarray) -> np.ndarray:
    """Similarities of the initial adjacent pairs (P, 2) -> (P,), all at once."""
    a, b = pairs[:, 0], pairs[:, 1]
    s = np.zeros(len(pairs), np.float64)
    if state.hist is not None:
        s += np.minimum(state.hist[a], state.hist[b]).sum(axis=1, dtype=np.float64)
    ga, gb = state.geo[a], state.geo[b]
    if state.use_size or state.use_fill:
        s += _size_fill(state, ga[:, 4] + gb[:, 4], ga, gb)
    return s
