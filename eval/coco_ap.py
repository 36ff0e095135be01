"""COCO bbox evaluation: the 12 numbers and the full arrays of pycocotools' COCOeval, exactly.

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

The sorting and cutting are numpy on flat arrays (no per-image split); the
two loops, matching and accumulation, are pycocotools' own loops compiled
with numba (``eval.coco_kernels``, imported on first use so that the VOC
protocols never load numba).
"""

from __future__ import annotations

import numpy as np

from eval.coco_engine import in_chunks, kernels
from eval.matching import FlatDets, FlatGT, pair_slices

IOU_THRESHOLDS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
RECALL_THRESHOLDS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)
MAX_DETS = (1, 10, 100)
AREA_RANGES = ((0**2, 1e5**2), (0**2, 32**2), (32**2, 96**2), (96**2, 1e5**2))  # all, small, medium, large
AREA_LABELS = ("all", "small", "medium", "large")


def _sort_and_cut(dets: FlatDets, num_images: int, k):
    """Detections by (class, image, -score, order), cut to 100 per pair: ``(idx, key, rank, by_class)``.

    ``by_class`` orders the kept rows by (class, -score, image, order): the
    order pycocotools' accumulate reads them in.
    """
    n_img = max(num_images, 1)
    n_cls = int(dets.label.max()) + 1 if len(dets.label) else 1
    perm = np.arange(len(dets.order)) if (np.diff(dets.order) > 0).all() else np.argsort(dets.order, kind="stable")
    idx, rank, by_class = k.sort_and_cut(perm.astype(np.int64), dets.image, dets.label, dets.scores, n_img, n_cls,
                                         MAX_DETS[-1])
    return idx, dets.label[idx] * n_img + dets.image[idx], rank, by_class


def match_coco(gt: FlatGT, dets: FlatDets, num_images: int, engine=None):
    """Match every kept detection at every area range and IoU threshold.

    Returns ``(idx, rank, tp, fp, by_class)``: ``idx`` (D,) indices into ``dets``
    sorted by (class, image, -score), at most 100 per pair; ``rank`` (D,) the
    position in its pair; ``tp`` / ``fp`` (D,) uint64 packed flags (bit
    a * T + t; neither set when the detection is ignored there); ``by_class``
    (D,) the rows in accumulation order (class, -score, image, order).
    """
    k = kernels(engine)
    idx, key, rank, by_class = _sort_and_cut(dets, num_images, k)
    new_pair = np.ones(len(key), bool)
    new_pair[1:] = key[1:] != key[:-1]
    first = np.flatnonzero(new_pair)
    gt_start, gt_count = pair_slices(gt, key[first])
    lo = np.array([a[0] for a in AREA_RANGES], np.float64)
    hi = np.array([a[1] for a in AREA_RANGES], np.float64)
    gt_ignore = gt.iscrowd[:, None] | (gt.area[:, None] < lo) | (gt.area[:, None] > hi)  # (N, A)
    tp = np.zeros(len(idx), np.uint64)
    fp = np.zeros(len(idx), np.uint64)
    det_start = np.append(first, len(key)).astype(np.int64)
    args = (det_start, np.ascontiguousarray(dets.boxes[idx]), dets.box_area[idx], gt_start.astype(np.int64),
            gt_count.astype(np.int64), np.ascontiguousarray(gt.boxes), gt.box_area, gt.iscrowd,
            np.ascontiguousarray(gt_ignore), lo, hi, np.minimum(IOU_THRESHOLDS, 1 - 1e-10), tp, fp)
    in_chunks(lambda p0, p1: k.match_pairs(*args, p0=p0, p1=p1), det_start, k)
    return idx, rank, tp, fp, by_class


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


def coco_precision_recall(gt: FlatGT, dets: FlatDets, num_images: int, num_classes: int, engine=None):
    """pycocotools' ``eval["precision"]`` (T, R, K, A, M) and ``eval["recall"]`` (T, K, A, M), -1 where undefined.

    Also returns what ``coco_evaluate`` needs for its curves: ``(precision,
    recall, scores, tp, fp, npig)`` with ``scores`` / ``tp`` / ``fp`` (D,) of
    the kept detections and ``npig`` (K, A) the objects counted per class and area range.
    """
    return _precision_recall(gt, dets, num_images, num_classes, engine)[:6]


def _precision_recall(gt: FlatGT, dets: FlatDets, num_images: int, num_classes: int, engine=None):
    """``coco_precision_recall``'s six arrays, then ``order`` (the kept rows class by class, each by descending
    score) and ``class_start`` (K + 1,) that cuts it by class."""
    idx, rank, tp, fp, order = match_coco(gt, dets, num_images, engine)
    labels = dets.label[idx]
    scores = dets.scores[idx]
    T, R, A, M = len(IOU_THRESHOLDS), len(RECALL_THRESHOLDS), len(AREA_RANGES), len(MAX_DETS)
    precision = -np.ones((T, R, num_classes, A, M))
    recall = -np.ones((T, num_classes, A, M))
    lo = np.array([a[0] for a in AREA_RANGES])
    hi = np.array([a[1] for a in AREA_RANGES])
    not_ignored = ~(gt.iscrowd[:, None] | (gt.area[:, None] < lo) | (gt.area[:, None] > hi))  # (N, A)
    npig = np.stack([np.bincount(gt.label[not_ignored[:, a]], minlength=num_classes) for a in range(A)], 1)
    class_start = np.searchsorted(labels[order], np.arange(num_classes + 1)).astype(np.int64)
    k = kernels(engine)
    args = (class_start, rank[order], tp[order], fp[order], npig.astype(np.int64), np.array(MAX_DETS, np.int64),
            RECALL_THRESHOLDS, precision, recall)
    in_chunks(lambda k0, k1: k.accumulate(*args, k0=k0, k1=k1), class_start, k)
    return precision, recall, scores, tp, fp, npig, order, class_start


def coco_evaluate(gt: FlatGT, dets: FlatDets, num_images: int, num_classes: int, engine=None):
    """Returns ``(stats, ap, curves, pooled)``.

    ``stats``: the 12 COCOeval numbers; ``ap`` (C,) mean precision over IoU
    and recall thresholds at area=all, maxDets=100 (NaN without objects);
    ``curves`` {class index: (precision (101,), recall thresholds)} at IoU .5;
    ``pooled`` (precision, recall) at IoU .5, area all, over all classes.
    """
    precision, recall, scores, tp, fp, npig, by_class, class_start = _precision_recall(gt, dets, num_images,
                                                                                      num_classes, engine)
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
    k = kernels(engine)
    if hasattr(k, "pooled_order"):  # the classes' score orders merged: the same order as the sort below
        mask = counted[by_class]
        before = np.zeros(len(mask) + 1, np.int64)
        np.cumsum(mask, out=before[1:])
        order = k.pooled_order(by_class[mask], before[class_start], scores)
    else:
        order = np.flatnonzero(counted)[k.argsort_descending(scores[counted])]
    ctp = np.cumsum(tp0[order], dtype=np.float64)
    cfp = np.cumsum(fp0[order], dtype=np.float64)
    total = float(npig[:, 0].sum())
    pooled = (ctp / np.maximum(ctp + cfp, np.finfo(np.float64).eps), ctp / total if total else np.zeros_like(ctp))
    return stats, ap, curves, pooled
