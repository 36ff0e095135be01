"""COCO bbox evaluation: the 12 numbers of pycocotools' COCOeval, vectorised.

Reproduces ``COCOeval.evaluate / accumulate / summarize`` (iouType="bbox"):

* per (image, category) pair, detections sorted by descending score (stable,
  file order on ties) and cut to the top ``maxDets[-1] = 100``;
* IoU as pycocotools' ``bbIou``; against a crowd object the union is the
  detection's area;
* an object is ignored in an area range when it is a crowd or its ``area``
  lies outside ``[lo, hi]`` (inclusive edges);
* greedy matching per IoU threshold t (needs IoU >= min(t, 1 - 1e-10)):
  a detection takes the free, non-ignored object of highest IoU (the last
  one in annotation order on a tie), else the best ignored one; crowd
  objects never become taken; a detection matched to an ignored object, or
  unmatched with its own area outside the range, is ignored;
* accumulation per category over images in the given order (pycocotools
  sorts image ids), stable-sorted by score, precision made monotone and read
  at the 101 recall thresholds (0 past the last recall reached).

Instead of pycocotools' Python loop per (image, category, area, detection,
object), pairs are bucketed by object count and the greedy matching walks
the detection rank (at most 100 steps per bucket) with all pairs, area ranges
and IoU thresholds of the bucket as one array.
"""

from __future__ import annotations

import numpy as np

from eval.iou import gathered_iou
from eval.matching import FlatDets, FlatGT, buckets, pair_slices

IOU_THRESHOLDS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
RECALL_THRESHOLDS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)
MAX_DETS = (1, 10, 100)
AREA_RANGES = ((0**2, 1e5**2), (0**2, 32**2), (32**2, 96**2), (96**2, 1e5**2))  # all, small, medium, large
AREA_LABELS = ("all", "small", "medium", "large")


def _sort_and_cut(dets: FlatDets, num_images: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Detections by (class, image, -score, order), cut to 100 per pair: (idx, key, rank)."""
    key = dets.label * max(num_images, 1) + dets.image
    # three stable sorts, least significant key first (cheaper than lexsort on 500k rows)
    idx = np.arange(len(key)) if (np.diff(dets.order) > 0).all() else np.argsort(dets.order, kind="stable")
    idx = idx[np.argsort(-dets.scores[idx], kind="stable")]
    idx = idx[np.argsort(key[idx], kind="stable")]
    key = key[idx]
    new_pair = np.ones(len(key), bool)
    new_pair[1:] = key[1:] != key[:-1]
    first = np.maximum.accumulate(np.where(new_pair, np.arange(len(key)), 0))
    rank = np.arange(len(key)) - first
    keep = rank < MAX_DETS[-1]
    return idx[keep], key[keep], rank[keep]


# Match flags for the (area range, IoU threshold) grid are packed into one uint64 per detection:
# bit a * T + t is area range a, threshold t (4 * 10 = 40 bits), so scattering and combining
# them costs one integer per detection instead of 40 booleans.
_T, _A = len(IOU_THRESHOLDS), len(AREA_RANGES)
_AREA_BITS = np.arange(_A, dtype=np.uint64) * np.uint64(_T)  # bit of threshold 0 in each area range
_EVERY_AREA = np.uint64(sum(1 << (a * _T) for a in range(_A)))  # times a T-bit pattern: one copy per area
_EVERY_T = np.uint64((1 << _T) - 1)  # times an area bit: all T thresholds of that area
_ALL = np.uint64((1 << (_A * _T)) - 1)


def _pack(flags: np.ndarray, shifts: np.ndarray | None = None) -> np.ndarray:
    """(n, k) bool -> (n,) uint64 with bit j (or ``shifts[j]``) set where ``flags[:, j]``."""
    if shifts is not None:  # a few scattered bits
        return np.bitwise_or.reduce(flags.astype(np.uint64) << shifts, axis=1)
    packed = np.zeros((len(flags), 8), np.uint8)
    packed[:, : (flags.shape[1] + 7) // 8] = np.packbits(flags, axis=1, bitorder="little")
    return packed.view("<u8").ravel().astype(np.uint64)


def _greedy_bucket(ious, lp, rank, crowd_p, ignore_p, matched, matched_ig, rows):
    """Greedy matching of one bucket of pairs with g objects each.

    ``ious`` (n, g) for the bucket's detections ``rows``; ``lp`` (n,) their
    pair's index in the bucket; ``rank`` (n,) their rank in the pair;
    ``crowd_p`` (P, g) bool; ``ignore_p`` (P, A, g) bool. Writes the packed
    flags ``matched`` / ``matched_ig`` (D,) uint64 at ``rows``.
    """
    n_pairs, num_areas, g = ignore_p.shape
    thr = np.minimum(IOU_THRESHOLDS, 1 - 1e-10)  # (T,)
    # a detection with IoU < .5 against every object of its pair matches nothing and takes nothing
    live = np.flatnonzero((ious >= thr[0]).any(axis=1))
    if len(live) == 0:
        return
    ious, lp, rank, rows = ious[live], lp[live], rank[live], rows[live]
    if g == 1:
        return _single_object_bucket(ious[:, :1] >= thr[None, :], lp, rank, crowd_p[:, 0], ignore_p[:, :, 0],
                                     matched, matched_ig, rows)
    taken = np.zeros((n_pairs, num_areas, len(thr), g), bool)  # (P, A, T, g)
    step = np.lexsort((lp, rank))
    bounds = np.searchsorted(rank[step], np.arange(rank.max() + 2))
    for r in range(len(bounds) - 1):
        s = step[bounds[r]:bounds[r + 1]]
        if len(s) == 0:
            continue
        p, iou = lp[s], ious[s]  # one detection per pair at this rank
        ge = iou[:, None, :] >= thr[None, :, None]  # (m, T, g)
        avail = (~taken[p] | crowd_p[p][:, None, None, :]) & ge[:, None]  # (m, A, T, g)
        ign = ignore_p[p][:, :, None, :]  # (m, A, 1, g)
        iou4 = iou[:, None, None, :]
        cand_n = avail & ~ign
        has_n = cand_n.any(-1)  # (m, A, T)
        # argmax on the reversed axis picks the LAST object on a tie, as pycocotools' `<` test does
        choice = g - 1 - np.argmax(np.where(cand_n, iou4, -1.0)[..., ::-1], axis=-1)
        cand_i = avail & ign
        has_i = cand_i.any(-1) & ~has_n  # an ignored object only when no regular one is free
        if has_i.any():
            best_i = g - 1 - np.argmax(np.where(cand_i, iou4, -1.0)[..., ::-1], axis=-1)
            choice = np.where(has_n, choice, best_i)
        has = has_n | has_i
        matched[rows[s]] = _pack(has.reshape(len(s), -1))
        matched_ig[rows[s]] = _pack(has_i.reshape(len(s), -1))
        ii, aa, tt = np.nonzero(has)
        taken[p[ii], aa, tt, choice[ii, aa, tt]] = True


def _single_object_bucket(ge, lp, rank, crowd, ignore, matched, matched_ig, rows):
    """Pairs with one object need no loop: the first detection (by rank) with IoU >= t takes it.

    ``ge`` (n, T) IoU >= threshold; a crowd object is never taken, so it
    matches every such detection. ``crowd`` (P,), ``ignore`` (P, A).
    The result does not depend on the area range, only whether it is ignored there.
    """
    order = np.lexsort((rank, lp))  # by pair, then rank
    ge, p = ge[order], lp[order]
    new_pair = np.ones(len(p), bool)
    new_pair[1:] = p[1:] != p[:-1]
    count = np.cumsum(ge, axis=0, dtype=np.int32)  # (n, T) running count of IoU >= t
    before = (count - ge)[new_pair]  # the count just before each pair's first detection
    within = count - before[np.cumsum(new_pair) - 1]
    hit = _pack(np.where(crowd[p][:, None], ge, ge & (within == 1)))  # (n,) T bits
    matched[rows[order]] = hit * _EVERY_AREA
    matched_ig[rows[order]] = hit * _pack(ignore[p], _AREA_BITS)


def match_coco(gt: FlatGT, dets: FlatDets, num_images: int):
    """Match every kept detection at every area range and IoU threshold.

    Returns ``(idx, rank, tp, fp)``: ``idx`` (D,) indices into ``dets`` sorted
    by (class, image, -score), at most 100 per pair; ``rank`` (D,) the
    position in its pair; ``tp`` / ``fp`` (D,) uint64 packed flags (bit
    a * T + t; neither set when the detection is ignored there).
    """
    idx, key, rank = _sort_and_cut(dets, num_images)
    boxes = dets.boxes[idx]
    det_area = dets.box_area[idx]  # pycocotools: w * h of the result box, for IoU and the area ranges
    lo = np.array([a[0] for a in AREA_RANGES])
    hi = np.array([a[1] for a in AREA_RANGES])
    gt_ignore = gt.iscrowd[:, None] | (gt.area[:, None] < lo) | (gt.area[:, None] > hi)  # (N, A)
    matched = np.zeros(len(idx), np.uint64)
    matched_ig = np.zeros(len(idx), np.uint64)
    start, count = pair_slices(gt, key)
    for g, rows in buckets(count):
        pair_start, lp = np.unique(start[rows], return_inverse=True)
        gidx = pair_start[:, None] + np.arange(g)  # (P, g)
        crowd_p = gt.iscrowd[gidx]
        ious = gathered_iou(boxes[rows], gt.boxes[gidx[lp]], crowd_p[lp], det_area[rows], gt.box_area[gidx[lp]])
        ignore_p = gt_ignore[gidx].transpose(0, 2, 1)  # (P, A, g)
        _greedy_bucket(ious, lp, rank[rows], crowd_p, ignore_p, matched, matched_ig, rows)
    det_out = _pack((det_area[:, None] < lo) | (det_area[:, None] > hi), _AREA_BITS) * _EVERY_T  # (D,)
    # matched to an ignored object, or unmatched and outside the area range: ignored
    tp = matched & ~matched_ig
    fp = ~matched & ~det_out & _ALL
    return idx, rank, tp, fp


def _accumulate_class(scores, rank, tp, fp, npig, precision, recall, k):
    """Fill ``precision[:, :, k]`` (T, R, A, M) and ``recall[:, k]`` (T, A, M) for one category.

    ``tp`` / ``fp`` (n,) packed flags for the category's detections, ordered
    by image, then rank in the image: the order pycocotools concatenates them in.
    """
    by_score = np.argsort(-scores, kind="stable")
    tp, fp, rank = tp[by_score], fp[by_score], rank[by_score]
    for m, max_det in enumerate(MAX_DETS):
        # a stable sort of a subsequence keeps the subsequence's order: select after sorting
        keep = rank < max_det
        for a in range(len(AREA_RANGES)):
            if npig[a] == 0:
                continue  # pycocotools leaves -1 here
            # Detections ignored at every threshold of this area range change no cumulative count and no
            # precision maximum, and never are the first to reach a recall: leaving them out is exact.
            area_bits = _EVERY_T << (np.uint64(a) * np.uint64(_T))
            cols = np.flatnonzero(keep & (((tp | fp) & area_bits) != 0))
            _accumulate_rows(_unpack_area(tp[cols], a), _unpack_area(fp[cols], a), npig[a],
                             precision[:, :, k, a, m], recall[:, k, a, m])


def _unpack_area(bits: np.ndarray, a: int) -> np.ndarray:
    """(n,) packed flags -> (T, n) bool for area range a."""
    shifts = np.uint64(a * _T) + np.arange(_T, dtype=np.uint64)
    return ((bits[None, :] >> shifts[:, None]) & np.uint64(1)).astype(bool)


def _accumulate_rows(tp, fp, npig, precision, recall) -> None:
    """pycocotools' accumulate for one (category, area, maxDets): ``tp`` / ``fp`` (T, n) bool in score order.

    Writes ``precision`` (T, R) at the recall thresholds (monotone envelope,
    0 past the last recall reached) and ``recall`` (T,).
    """
    n = tp.shape[1]
    tp_sum = np.cumsum(tp, axis=1, dtype=np.int32)  # exact counts
    fp_sum = np.cumsum(fp, axis=1, dtype=np.int32)
    tp_f = tp_sum.astype(np.float64)
    pr = tp_f / ((fp_sum + tp_sum).astype(np.float64) + np.spacing(1))
    pr = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]  # monotone envelope
    for t in range(tp.shape[0]):
        rc = tp_f[t] / npig
        recall[t] = rc[-1] if n else 0.0
        inds = np.searchsorted(rc, RECALL_THRESHOLDS, side="left")
        q = np.zeros(len(RECALL_THRESHOLDS))
        ok = inds < n
        q[ok] = pr[t, inds[ok]]
        precision[t] = q


def summarize(precision: np.ndarray, recall: np.ndarray) -> list[float]:
    """The 12 numbers of ``COCOeval.summarize`` from (T, R, K, A, M) precision and (T, K, A, M) recall."""

    def one(ap: bool, iou=None, area="all", max_dets=100) -> float:
        a = AREA_LABELS.index(area)
        m = MAX_DETS.index(max_dets)
        s = precision if ap else recall
        if iou is not None:
            s = s[np.where(iou == IOU_THRESHOLDS)[0]]
        s = s[..., a, m]
        valid = s[s > -1]
        return float(np.mean(valid)) if len(valid) else -1.0

    return [
        one(True), one(True, iou=0.5), one(True, iou=0.75),
        one(True, area="small"), one(True, area="medium"), one(True, area="large"),
        one(False, max_dets=1), one(False, max_dets=10), one(False),
        one(False, area="small"), one(False, area="medium"), one(False, area="large"),
    ]


def coco_precision_recall(gt: FlatGT, dets: FlatDets, num_images: int, num_classes: int):
    """pycocotools' ``eval["precision"]`` (T, R, K, A, M) and ``eval["recall"]`` (T, K, A, M), -1 where undefined.

    Also returns what ``coco_evaluate`` needs for its curves: ``(precision,
    recall, scores, tp, fp, npig)`` with ``scores`` / ``tp`` / ``fp`` (D,) of
    the kept detections and ``npig`` (K, A) the objects counted per class and area range.
    """
    idx, rank, tp, fp = match_coco(gt, dets, num_images)
    labels = dets.label[idx]
    scores = dets.scores[idx]
    T, R, A, M = len(IOU_THRESHOLDS), len(RECALL_THRESHOLDS), len(AREA_RANGES), len(MAX_DETS)
    precision = -np.ones((T, R, num_classes, A, M))
    recall = -np.ones((T, num_classes, A, M))
    lo = np.array([a[0] for a in AREA_RANGES])
    hi = np.array([a[1] for a in AREA_RANGES])
    not_ignored = ~(gt.iscrowd[:, None] | (gt.area[:, None] < lo) | (gt.area[:, None] > hi))  # (N, A)
    npig = np.stack([np.bincount(gt.label[not_ignored[:, a]], minlength=num_classes) for a in range(A)], 1)
    bounds = np.searchsorted(labels, np.arange(num_classes + 1))
    for k in range(num_classes):
        s = slice(bounds[k], bounds[k + 1])
        _accumulate_class(scores[s], rank[s], tp[s], fp[s], npig[k], precision, recall, k)
    return precision, recall, scores, tp, fp, npig


def coco_evaluate(gt: FlatGT, dets: FlatDets, num_images: int, num_classes: int):
    """Returns ``(stats, ap, curves, pooled)``.

    ``stats``: the 12 COCOeval numbers; ``ap`` (C,) mean precision over IoU
    and recall thresholds at area=all, maxDets=100 (NaN without objects);
    ``curves`` {class index: (precision (101,), recall thresholds)} at IoU .5;
    ``pooled`` (precision, recall) at IoU .5, area all, over all classes.
    """
    precision, recall, scores, tp, fp, npig = coco_precision_recall(gt, dets, num_images, num_classes)
    stats = summarize(precision, recall)
    ap = np.full(num_classes, np.nan)
    curves = {}
    for k in range(num_classes):
        p = precision[:, :, k, 0, 2]
        if (p > -1).any():
            ap[k] = float(np.mean(p[p > -1]))
            curves[k] = (precision[0, :, k, 0, 2].copy(), RECALL_THRESHOLDS.copy())
    tp0, fp0 = (tp & np.uint64(1)).astype(bool), (fp & np.uint64(1)).astype(bool)  # area all, IoU .50
    counted = tp0 | fp0
    order = np.flatnonzero(counted)[np.argsort(-scores[counted], kind="stable")]
    ctp = np.cumsum(tp0[order], dtype=np.float64)
    cfp = np.cumsum(fp0[order], dtype=np.float64)
    total = float(npig[:, 0].sum())
    pooled = (ctp / np.maximum(ctp + cfp, np.finfo(np.float64).eps), ctp / total if total else np.zeros_like(ctp))
    return stats, ap, curves, pooled
