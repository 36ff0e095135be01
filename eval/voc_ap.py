"""PASCAL VOC average precision (voc07 11-point and voc12 area), vectorised and devkit-exact.

The rules (docs/eval.md, "The VOC rules, exactly"; the VOC devkit's ``VOCevaldet.m``):

* a class's detections are sorted by descending score with a stable sort
  (``order`` breaks ties: the line number in the result file);
* each detection takes the object of the same image and class with the
  highest IoU, the first in annotation order on an exact tie, taken or not;
  it matches only if that IoU is > 0.5;
* a match to a difficult object is neither TP nor FP (dropped); the first
  match to any other object is a TP, later ones FP; no match is a FP.

Because the chosen object does not depend on what earlier detections took,
matching needs no loop: "first detection to take object j" is the first
occurrence of j among the sorted candidate matches (``np.unique``).
"""

from __future__ import annotations

import numpy as np

from eval.iou import gathered_iou
from eval.matching import FlatDets, FlatGT, buckets, pair_slices

#: The 11 recall thresholds of VOC2007's AP, as exact tenths (3/10 is 0.3, not arange's 0.30000000000000004).
VOC07_RECALL_THRESHOLDS: tuple[float, ...] = tuple(k / 10 for k in range(11))


def voc07_ap(recall: np.ndarray, precision: np.ndarray) -> float:
    """11-point interpolated AP: mean over t in {0, .1, ..., 1} of max precision at recall >= t (0 if none)."""
    ap = 0.0
    for t in VOC07_RECALL_THRESHOLDS:
        above = recall >= t
        p = float(np.max(precision[above])) if above.any() else 0.0
        ap = ap + p / 11.0  # summed in this order, as the devkit does
    return ap


def voc12_ap(recall: np.ndarray, precision: np.ndarray) -> float:
    """Area under the monotone precision envelope, summed where recall changes."""
    mrec = np.concatenate(([0.0], recall, [1.0]))
    mpre = np.concatenate(([0.0], precision, [0.0]))
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]  # running max from the right
    i = np.where(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


def match_voc(gt: FlatGT, dets: FlatDets, num_images: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Devkit matching of every detection of every class at once.

    Returns ``(idx, tp, fp)``: ``idx`` (K,) indices into ``dets`` of the
    counted detections (difficult matches dropped), sorted by class, then
    descending score, then ``order``; ``tp`` / ``fp`` (K,) bool.
    """
    # stable sorts, least significant key first; input order already is ``order`` when it increases
    idx = np.arange(len(dets.order)) if (np.diff(dets.order) > 0).all() else np.argsort(dets.order, kind="stable")
    idx = idx[np.argsort(-dets.scores[idx], kind="stable")]
    idx = idx[np.argsort(dets.label[idx], kind="stable")]
    key = dets.label[idx] * max(num_images, 1) + dets.image[idx]
    start, count = pair_slices(gt, key)
    ovmax = np.zeros(len(idx))
    jmax = np.full(len(idx), -1, np.int64)
    for g, rows in buckets(count):
        gidx = start[rows, None] + np.arange(g)  # (n, g) objects of each row's pair
        ious = gathered_iou(dets.boxes[idx[rows]], gt.boxes[gidx])
        best = np.argmax(ious, axis=1)  # first on an exact tie
        ovmax[rows] = ious[np.arange(len(rows)), best]
        jmax[rows] = gidx[np.arange(len(rows)), best]
    hit = ovmax > 0.5  # strictly, as the VOC paper's "exceed 50%"
    difficult_hit = np.zeros(len(idx), bool)
    difficult_hit[hit] = gt.difficult[jmax[hit]]
    candidate = np.flatnonzero(hit & ~difficult_hit)
    _, first = np.unique(jmax[candidate], return_index=True)  # the first (best-ranked) taker of each object
    tp = np.zeros(len(idx), bool)
    tp[candidate[first]] = True
    keep = ~difficult_hit
    return idx[keep], tp[keep], ~tp[keep]


def voc_evaluate(gt: FlatGT, dets: FlatDets, num_images: int, num_classes: int, protocol: str):
    """Per-class AP, curves and the pooled curve under ``voc07`` or ``voc12``.

    Returns ``(ap, curves, pooled)``: ``ap`` (C,) float64 with NaN for a class
    without non-difficult objects; ``curves`` {class index: (precision, recall)};
    ``pooled`` (precision, recall) over all classes.
    """
    ap_fn = voc07_ap if protocol == "voc07" else voc12_ap
    idx, tp, fp = match_voc(gt, dets, num_images)
    labels = dets.label[idx]
    npos = np.bincount(gt.label[~gt.difficult], minlength=num_classes)
    bounds = np.searchsorted(labels, np.arange(num_classes + 1))
    ap = np.full(num_classes, np.nan)
    curves = {}
    for c in range(num_classes):
        if npos[c] == 0:
            continue
        tp_c = np.cumsum(tp[bounds[c]:bounds[c + 1]], dtype=np.float64)
        fp_c = np.cumsum(fp[bounds[c]:bounds[c + 1]], dtype=np.float64)
        rec = tp_c / float(npos[c])
        prec = tp_c / np.maximum(tp_c + fp_c, np.finfo(np.float64).eps)
        ap[c] = ap_fn(rec, prec)
        curves[c] = (prec, rec)
    pooled_order = np.argsort(-dets.scores[idx], kind="stable")  # ties keep (class, score, order) order
    ctp = np.cumsum(tp[pooled_order], dtype=np.float64)
    cfp = np.cumsum(fp[pooled_order], dtype=np.float64)
    total = float(npos.sum())
    pooled = (ctp / np.maximum(ctp + cfp, np.finfo(np.float64).eps), ctp / total if total else np.zeros_like(ctp))
    return ap, curves, pooled
