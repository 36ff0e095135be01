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


def pair_similarity(state: "GroupingState", i: int, others: list[int]) -> list[float]:
    """Similarity of region ``i`` to each region in ``others`` -> list of K floats.

    Histogram intersections are one numpy call over all K neighbours; size and
    fill are a few float operations each, cheaper in plain Python than as
    numpy calls on arrays this small (a region has about 5-10 neighbours).
    """
    if state.hist is not None:
        # s_colour + s_texture in one intersection over the concatenated histograms.
        sims = np.minimum(state.hist[others], state.hist[i]).sum(axis=1, dtype=np.float64).tolist()
    else:
        sims = [0.0] * len(others)
    if not (state.use_size or state.use_fill):
        return sims
    geo, area = state.geo, state.image_size
    x1, y1, x2, y2, size = geo[i]
    out = []
    for s, k in zip(sims, others):
        a1, b1, a2, b2, sk = geo[k]
        both = size + sk
        if state.use_fill:
            bb = (max(x2, a2) - min(x1, a1)) * (max(y2, b2) - min(y1, b1))  # box around both
            # size + fill = (1 - both/A) + (1 - (bb - both)/A) = 2 - bb/A
            s += (2.0 - bb / area) if state.use_size else (1.0 - (bb - both) / area)
        else:
            s += 1.0 - both / area
        out.append(s)
    return out


class GroupingState:
    """Everything about the up to 2R-1 regions a grouping forms; 0..R-1 are the initial ones.

    ``geo[k]`` = [x1, y1, x2, y2, size] as Python floats (appended as regions
    form); ``hist`` (2R-1, D) float32 holds the colour and/or texture histograms
    side by side (only those the similarity uses), so one weighted sum merges
    both and one intersection compares both.
    """

    def __init__(self, init: Regions, image_size: float, use: frozenset[str]):
        n = len(init.sizes)
        self.image_size = float(image_size)
        self.use_size, self.use_fill = "S" in use, "F" in use
        self.geo = np.concatenate([init.boxes, init.sizes[:, None]], axis=1).tolist()
        parts = [h for letter, h in (("C", init.colour), ("T", init.texture)) if letter in use]
        self.hist = None
        if parts:
            self.hist = np.empty((2 * n - 1, sum(p.shape[1] for p in parts)), np.float32)
            self.hist[:n] = np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]

    def merge(self, i: int, j: int, t: int) -> None:
        """Region t (the next one) := the union of regions i and j."""
        a, b = self.geo[i], self.geo[j]
        st = a[4] + b[4]
        self.geo.append([min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]), st])
        if self.hist is not None:
            # Size-weighted mean: equals the histogram of the union's pixels.
            hist = self.hist
            np.add(hist[i] * np.float32(a[4] / st), hist[j] * np.float32(b[4] / st), out=hist[t])


def hierarchical_grouping(init: Regions, image_size: float, similarity: frozenset[str]) -> np.ndarray:
    """Run algorithm 1 of the paper -> (2R-1, 4) float64 boxes in creation order.

    Row k is the k-th region formed: the R initial regions first, then one row per
    merge; the last row is the region that covers everything (when the adjacency
    graph is connected, as it is for a segmentation of one image).
    """
    n = len(init.sizes)
    state = GroupingState(init, image_size, similarity)
    alive = [True] * n + [False] * max(n - 1, 0)
    neighbours: list[set[int] | None] = [set() for _ in range(n)]
    heap: list[tuple[float, int, int]] = []
    if len(init.pairs):
        a, b = init.pairs[:, 0].tolist(), init.pairs[:, 1].tolist()
        for p, q in zip(a, b):
            neighbours[p].add(q)
            neighbours[q].add(p)
        heap = list(zip((-_pairs_similarity(state, init.pairs)).tolist(), a, b))
        heapq.heapify(heap)
    t = n
    pop, push = heapq.heappop, heapq.heappush
    while heap:
        _, i, j = pop(heap)
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
            for s, k in zip(pair_similarity(state, t, others), others):
                push(heap, (-s, k, t))
        t += 1
    return np.asarray(state.geo, np.float64).reshape(-1, 5)[:t, :4]


def _pairs_similarity(state: GroupingState, pairs: np.ndarray) -> np.ndarray:
    """Similarities of the initial adjacent pairs (P, 2) -> (P,), all at once."""
    a, b = pairs[:, 0], pairs[:, 1]
    s = np.zeros(len(pairs), np.float64)
    if state.hist is not None:
        s += np.minimum(state.hist[a], state.hist[b]).sum(axis=1, dtype=np.float64)
    if state.use_size or state.use_fill:
        geo = np.asarray(state.geo, np.float64)
        ga, gb = geo[a], geo[b]
        both = ga[:, 4] + gb[:, 4]
        wh = np.maximum(ga[:, 2:4], gb[:, 2:4]) - np.minimum(ga[:, :2], gb[:, :2])
        bb = wh[:, 0] * wh[:, 1]  # area of the box around both regions
        if state.use_size:
            s += 1.0 - both / state.image_size
        if state.use_fill:
            s += 1.0 - (bb - both) / state.image_size
    return s
