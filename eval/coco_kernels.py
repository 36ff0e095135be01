"""The two loops of pycocotools' COCOeval (bbox), compiled with numba: per-pair greedy matching and accumulation.

They are pycocotools' ``evaluateImg`` and ``accumulate`` written as plain
loops over flat arrays, with the same floating-point operations in the same
order, so the results are bit-identical (tests/eval/test_coco_ap.py compares
the full precision and recall arrays with COCOeval's). Compiled once and kept
in numba's on-disk cache (``cache=True``, next to this file), so a later
process only loads the machine code.

Match flags are packed as in ``eval.coco_ap``: bit ``a * T + t`` of a uint64
per detection is area range ``a``, IoU threshold ``t``.
"""

from __future__ import annotations

import sys

import numpy as np
from numba import njit


def load_numba_without_scipy() -> None:
    """Load numba's numpy support without its BLAS probe, which imports all of scipy.linalg (~0.4 s).

    The first call of any compiled function, even one loaded from the cache,
    imports ``numba.np.arraymath``, which tries ``import
    scipy.linalg.cython_blas`` only to choose between BLAS and a plain loop
    for ``np.correlate`` / ``np.convolve`` (used by none of our kernels). For
    that one import the module is marked absent, then unmarked: scipy stays
    importable, and numba uses the plain loop for those two functions in this
    process. Skipped when scipy.linalg or numba's numpy support is loaded already.
    """
    if "numba.np.arraymath" in sys.modules or "scipy.linalg" in sys.modules:
        return
    name = "scipy.linalg.cython_blas"
    marked = name not in sys.modules
    if marked:
        sys.modules[name] = None  # `import` raises ImportError for a module mapped to None
    try:
        import numba.np.arraymath  # noqa: F401
    finally:
        if marked and name in sys.modules and sys.modules[name] is None:
            del sys.modules[name]


load_numba_without_scipy()


@njit(cache=True, nogil=True)
def stable_argsort_int(keys, num_keys):  # pragma: no cover - compiled
    """``np.argsort(keys, kind="stable")`` for ints in ``[0, num_keys)``, by counting: O(n + num_keys)."""
    start = np.zeros(num_keys + 1, np.int64)
    for k in keys:
        start[k + 1] += 1
    for k in range(num_keys):
        start[k + 1] += start[k]
    out = np.empty(len(keys), np.int64)
    for i in range(len(keys)):
        out[start[keys[i]]] = i
        start[keys[i]] += 1
    return out


@njit(cache=True, nogil=True)
def match_pairs(det_start, det_boxes, det_area, gt_start, gt_count, gt_boxes, gt_area, gt_crowd, gt_ignore,
                area_lo, area_hi, thr, tp_out, fp_out):  # pragma: no cover - compiled
    """Greedy matching of every (image, class) pair, pycocotools' ``evaluateImg`` order and tie rules.

    Detections of pair ``p`` are rows ``det_start[p]:det_start[p + 1]`` of
    ``det_boxes`` (D, 4) x1y1x2y2 / ``det_area`` (D,), sorted by descending
    score (stable) and cut to 100; its objects are rows ``gt_start[p] :
    gt_start[p] + gt_count[p]`` of ``gt_boxes`` / ``gt_area`` (w * h) /
    ``gt_crowd`` / ``gt_ignore`` (N, A), in annotation order. ``thr`` (T,)
    are the IoU thresholds already capped at 1 - 1e-10. Writes ``tp_out`` /
    ``fp_out`` (D,) uint64: neither bit set where the detection is ignored.
    """
    num_areas, num_thr = gt_ignore.shape[1], len(thr)
    max_d, max_g = 1, 1
    for p in range(len(det_start) - 1):
        max_d, max_g = max(max_d, det_start[p + 1] - det_start[p]), max(max_g, gt_count[p])
    ious_buf = np.zeros((max_d, max_g))  # scratch, reused by every pair
    best_buf = np.zeros(max_d)  # each detection's highest IoU: below a threshold it matches nothing there
    order = np.empty(max_g, np.int64)
    taken = np.zeros(max_g, np.bool_)
    for p in range(len(det_start) - 1):
        d0, d1 = det_start[p], det_start[p + 1]
        nd, g0, ng = d1 - d0, gt_start[p], gt_count[p]
        ious = ious_buf[:nd, :ng]
        for d in range(nd):  # pycocotools' bbIou: both sides positive, crowd union = detection area
            best_buf[d] = 0.0
            for g in range(ng):
                ious[d, g] = 0.0
                iw = min(det_boxes[d0 + d, 2], gt_boxes[g0 + g, 2]) - max(det_boxes[d0 + d, 0], gt_boxes[g0 + g, 0])
                if iw <= 0:
                    continue
                ih = min(det_boxes[d0 + d, 3], gt_boxes[g0 + g, 3]) - max(det_boxes[d0 + d, 1], gt_boxes[g0 + g, 1])
                if ih <= 0:
                    continue
                inter = iw * ih
                union = det_area[d0 + d] if gt_crowd[g0 + g] else det_area[d0 + d] + gt_area[g0 + g] - inter
                ious[d, g] = inter / union
                best_buf[d] = max(best_buf[d], ious[d, g])
        for a in range(num_areas):
            k = 0  # objects not ignored first, then the ignored ones, each in annotation order (a stable sort)
            for flag in (False, True):
                for g in range(ng):
                    if gt_ignore[g0 + g, a] == flag:
                        order[k] = g
                        k += 1
            for t in range(num_thr):
                bit = np.uint64(1) << np.uint64(a * num_thr + t)
                taken[:ng] = False
                for d in range(nd):
                    best, m = thr[t], -1
                    for j in range(ng if best_buf[d] >= best else 0):
                        g = order[j]
                        if taken[g] and not gt_crowd[g0 + g]:
                            continue
                        if m > -1 and not gt_ignore[g0 + m, a] and gt_ignore[g0 + g, a]:
                            break
                        if ious[d, g] < best:
                            continue
                        best, m = ious[d, g], g
                    if m > -1:
                        taken[m] = True
                        if not gt_ignore[g0 + m, a]:
                            tp_out[d0 + d] |= bit
                    elif not (det_area[d0 + d] < area_lo[a] or det_area[d0 + d] > area_hi[a]):
                        fp_out[d0 + d] |= bit


@njit(cache=True, nogil=True)
def accumulate(class_start, rank, tp, fp, npig, max_dets, rec_thrs, precision, recall):  # pragma: no cover
    """pycocotools' ``accumulate`` for every (class, area range, maxDets, IoU threshold).

    Detections of class ``k`` are rows ``class_start[k]:class_start[k + 1]``
    of ``rank`` / ``tp`` / ``fp``, in pycocotools' order (descending score,
    ties by image, then rank in the image); ``rank`` (D,) is the position in
    its pair. ``npig`` (K, A) counts the objects not ignored. Fills
    ``precision`` (T, R, K, A, M) and ``recall`` (T, K, A, M), which the
    caller set to -1 (left so where ``npig`` is 0).

    Only true positives are stored: precision rises only at one and recall
    changes only at one, so the monotone envelope at any position equals the
    maximum over the true positives from there on, and the first position
    whose recall reaches a threshold is a true positive (or the start, whose
    envelope is the maximum of all). A detection ignored at a threshold
    changes no count there and is skipped, as it changes neither.
    """
    num_thr, num_rec = precision.shape[0], precision.shape[1]
    eps = np.spacing(1.0)
    n_max = 1
    for k in range(len(class_start) - 1):
        n_max = max(n_max, class_start[k + 1] - class_start[k])
    pr = np.empty(n_max)
    rc = np.empty(n_max)
    rows = np.empty(n_max, np.int64)
    for k in range(len(class_start) - 1):
        for m in range(len(max_dets)):
            n_rows = 0  # the class's detections within maxDets of their pair
            for i in range(class_start[k], class_start[k + 1]):
                if rank[i] < max_dets[m]:
                    rows[n_rows] = i
                    n_rows += 1
            for a in range(npig.shape[1]):
                if npig[k, a] == 0:
                    continue
                for t in range(num_thr):
                    bit = np.uint64(1) << np.uint64(a * num_thr + t)
                    n, tps, fps = 0, 0, 0
                    for j in range(n_rows):
                        i = rows[j]
                        if tp[i] & bit:
                            tps += 1
                            pr[n] = float(tps) / (float(fps) + float(tps) + eps)
                            rc[n] = float(tps) / npig[k, a]
                            n += 1
                        elif fp[i] & bit:
                            fps += 1
                    recall[t, k, a, m] = float(tps) / npig[k, a] if tps + fps else 0.0
                    for i in range(n - 1, 0, -1):  # the monotone envelope over the true positives
                        if pr[i] > pr[i - 1]:
                            pr[i - 1] = pr[i]
                    i = 0
                    for r in range(num_rec):  # searchsorted(rc, rec_thrs, "left"); 0 past the last recall reached
                        while i < n and rc[i] < rec_thrs[r]:
                            i += 1
                        precision[t, r, k, a, m] = pr[i] if i < n else 0.0
