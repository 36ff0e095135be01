"""TIDE error analysis (Bolya et al., ECCV 2020): how much AP@50 each kind of error costs. Numpy only.

Every false positive is given one main error type, tested in this order (IoU
with the objects of its image; foreground threshold 0.5, background 0.1):

* ``Loc``: the best same-class IoU lies in [0.1, 0.5];
* ``Cls``: the best other-class IoU is >= 0.5;
* ``Dupe``: a same-class object it overlaps >= 0.5 was already taken;
* ``Bkg``: no object at all overlaps it more than 0.1 (or the image has none);
* ``Both``: anything else (wrong class and badly placed);

and an object nobody matched, and that no Loc/Cls error could claim, is a
``Miss``. Each main error's value is the AP@50 gained when only that kind is
fixed (a Loc/Cls detection becomes a true positive of the object it aimed at
if it is the highest-scored claimant of a free object, else it is dropped;
Dupe/Bkg/Both detections are dropped; a Miss leaves the object count), never
below 0. The special errors: ``FalsePos`` (every true positive scored above
every false positive) and ``FalseNeg`` (every unmatched object removed).

The rules and the AP are tidecv 1.0.1's (tests check equality to 1e-6 of its
percent numbers), with values here as fractions like ``mAP``:

* matching is greedy per image over the detections in descending score
  (stable), at most ``MAX_DETS`` per image: each takes the free same-class
  object of highest IoU (first on a tie) when that IoU is >= 0.5;
* ignore regions (COCO crowds, VOC difficult objects) swallow an unmatched
  detection of their class whose intersection over the detection's area
  exceeds 0.5; it then leaves the AP but still gets an error type;
* AP per class is COCO-style: precision made monotone and read at recall
  0, 0.01, ..., 1 (the first point reaching each), averaged over the 101;
  a class counts in the mean when it has objects or detections;
* ties in score keep image order, then rank; in a "fixed" AP the detections
  that had an error come before the correct ones on a tie, as in tidecv.

The greedy matching walks the detection rank (at most 100 steps) with every
image that has the same number of objects as one array, as ``eval.coco_ap`` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from eval.matching import buckets, gathered_iou
from eval.types import Detections, GroundTruth

MAIN_ERRORS: tuple[str, ...] = ("Cls", "Loc", "Both", "Dupe", "Bkg", "Miss")
SPECIAL_ERRORS: tuple[str, ...] = ("FalsePos", "FalseNeg")
POS_THRESH = 0.5
BG_THRESH = 0.1
MAX_DETS = 100

_CLS, _LOC, _BOTH, _DUPE, _BKG = range(5)  # error codes of a detection; -1 = a true positive


@dataclass
class ErrorAnalysis:
    """TIDE's result: ``ap50`` (its AP@50) and the AP@50 gained by fixing each error type (fractions, not percent).

    ``counts``: how many detections (objects, for Miss) got each main error type.
    A value is NaN when nothing was evaluated (no objects and no detections).
    """

    ap50: float
    main: dict[str, float]
    special: dict[str, float]
    counts: dict[str, int]

    def to_json(self) -> dict:
        """``{"ap50", "main": {type: dAP}, "special": {type: dAP}, "counts": {type: n}}``; NaN becomes null."""
        def num(v):
            return None if v != v else float(v)
        return {"ap50": num(self.ap50), "main": {k: num(v) for k, v in self.main.items()},
                "special": {k: num(v) for k, v in self.special.items()}, "counts": dict(self.counts)}


@dataclass
class _Flat:
    """One image after another. Objects in annotation order; detections by descending score, top MAX_DETS."""

    g_img: np.ndarray
    g_label: np.ndarray
    g_box: np.ndarray
    g_area: np.ndarray
    g_ignore: np.ndarray
    d_img: np.ndarray
    d_label: np.ndarray
    d_box: np.ndarray
    d_area: np.ndarray
    d_score: np.ndarray
    d_rank: np.ndarray


def _areas(d: dict, boxes: np.ndarray) -> np.ndarray:
    if d.get("box_area") is not None:
        return np.asarray(d["box_area"], np.float64).reshape(-1)
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def _flatten(gts: Sequence[GroundTruth], dets: Sequence[Detections], max_dets: int) -> _Flat:
    g, d = {k: [] for k in ("img", "label", "box", "area", "ignore")}, {k: [] for k in ("img", "label", "box", "area",
                                                                                       "score", "rank")}
    for i, (gt, det) in enumerate(zip(gts, dets)):
        boxes = np.asarray(gt["boxes"], np.float64).reshape(-1, 4)
        ignore = np.zeros(len(boxes), bool)
        for name in ("difficult", "iscrowd"):  # VOC difficult objects and COCO crowds are TIDE's ignore regions
            if gt.get(name) is not None:
                ignore |= np.asarray(gt[name], bool).reshape(-1)
        g["img"].append(np.full(len(boxes), i, np.int64))
        g["label"].append(np.asarray(gt["labels"], np.int64).reshape(-1))
        g["box"].append(boxes)
        g["area"].append(_areas(gt, boxes))
        g["ignore"].append(ignore)
        dboxes = np.asarray(det["boxes"], np.float64).reshape(-1, 4)
        scores = np.asarray(det["scores"], np.float64).reshape(-1)
        tie = np.asarray(det["order"], np.int64) if det.get("order") is not None else np.arange(len(scores))
        keep = np.lexsort((tie, -scores))[:max_dets]  # descending score; ties in file order
        d["img"].append(np.full(len(keep), i, np.int64))
        d["label"].append(np.asarray(det["labels"], np.int64).reshape(-1)[keep])
        d["box"].append(dboxes[keep])
        d["area"].append(_areas(det, dboxes)[keep])
        d["score"].append(scores[keep])
        d["rank"].append(np.arange(len(keep), dtype=np.int64))
    empty = {"img": np.zeros(0, np.int64), "label": np.zeros(0, np.int64), "box": np.zeros((0, 4)),
             "area": np.zeros(0), "ignore": np.zeros(0, bool), "score": np.zeros(0), "rank": np.zeros(0, np.int64)}
    g = {k: np.concatenate(v) if v else empty[k] for k, v in g.items()}
    d = {k: np.concatenate(v) if v else empty[k] for k, v in d.items()}
    return _Flat(**{f"g_{k}": v for k, v in g.items()}, **{f"d_{k}": v for k, v in d.items()})


def _image_slices(obj_img: np.ndarray, det_img: np.ndarray, num_images: int) -> tuple[np.ndarray, np.ndarray]:
    """(start, count) of each detection's image's objects; ``obj_img`` is non-decreasing."""
    bounds = np.searchsorted(obj_img, np.arange(num_images + 1))
    return bounds[det_img], (bounds[1:] - bounds[:-1])[det_img]


@dataclass
class _Outcome:
    """Per detection: ``used`` (a true positive), ``ignored`` (swallowed by an ignore region), ``code`` (error
    type, -1 for a true positive) and ``target`` (the regular object a Loc/Cls error aimed at, else -1);
    per regular object: ``taken``."""

    used: np.ndarray
    ignored: np.ndarray
    code: np.ndarray
    target: np.ndarray
    taken: np.ndarray


def _greedy(iou_same: np.ndarray, local_img: np.ndarray, rank: np.ndarray, num_local: int) -> tuple:
    """Greedy matching inside one bucket of images with g objects each.

    ``iou_same`` (n, g): IoU with each object of the detection's image, 0 for
    another class; rows in (image, rank) order. Returns (matched (n,) bool,
    object index (n,) int, taken (num_local, g) bool).
    """
    n, g = iou_same.shape
    matched, choice = np.zeros(n, bool), np.full(n, -1, np.int64)
    taken = np.zeros((num_local, g), bool)
    live = np.flatnonzero((iou_same >= POS_THRESH).any(axis=1))  # the others can never take an object
    for r in np.unique(rank[live]):
        s = live[rank[live] == r]  # at most one detection per image at this rank
        buf = np.where(taken[local_img[s]], 0.0, iou_same[s])
        best = np.argmax(buf, axis=1)  # the first on a tie
        hit = buf[np.arange(len(s)), best] >= POS_THRESH
        taken[local_img[s[hit]], best[hit]] = True
        matched[s[hit]], choice[s[hit]] = True, best[hit]
    return matched, choice, taken


def _match(f: _Flat, num_images: int) -> _Outcome:
    """Match, apply the ignore regions and give every unmatched detection its main error type."""
    reg, ign = np.flatnonzero(~f.g_ignore), np.flatnonzero(f.g_ignore)
    nd = len(f.d_img)
    used, ignored = np.zeros(nd, bool), np.zeros(nd, bool)
    code, target = np.full(nd, _BKG, np.int64), np.full(nd, -1, np.int64)  # no object in the image: Bkg
    taken = np.zeros(len(reg), bool)
    start, count = _image_slices(f.g_img[reg], f.d_img, num_images)
    for g, rows in buckets(count):
        gidx = start[rows, None] + np.arange(g)  # (n, g) indices into the regular objects
        obj = reg[gidx]
        iou = gathered_iou(f.d_box[rows], f.g_box[obj], det_area=f.d_area[rows], gt_area=f.g_area[obj])
        same = f.d_label[rows, None] == f.g_label[obj]
        images, local = np.unique(f.d_img[rows], return_inverse=True)
        matched, choice, took = _greedy(np.where(same, iou, 0.0), local, f.d_rank[rows], len(images))
        used[rows] = matched
        taken[start[rows][matched] + choice[matched]] = True
        same_iou = np.where(same, iou, 0.0)
        loc_t, other = np.argmax(same_iou, axis=1), np.where(same, 0.0, iou)
        cls_t = np.argmax(other, axis=1)
        at = np.arange(len(rows))
        best_same, best_other = same_iou[at, loc_t], other[at, cls_t]
        dupe = np.where(same & took[local], iou, 0.0).max(axis=1)
        code[rows] = np.select(
            [matched, (best_same >= BG_THRESH) & (best_same <= POS_THRESH), best_other >= POS_THRESH,
             dupe >= POS_THRESH, iou.max(axis=1) <= BG_THRESH],
            [-1, _LOC, _CLS, _DUPE, _BKG], _BOTH)
        aimed = np.where(code[rows] == _LOC, gidx[at, loc_t], gidx[at, cls_t])  # the object it would have had
        target[rows] = np.where((code[rows] == _LOC) | (code[rows] == _CLS), aimed, -1)
    start, count = _image_slices(f.g_img[ign], f.d_img, num_images)
    for g, rows in buckets(count):
        obj = ign[start[rows, None] + np.arange(g)]
        cover = gathered_iou(f.d_box[rows], f.g_box[obj], np.ones((len(rows), g), bool), f.d_area[rows], f.g_area[obj])
        hit = ((cover > POS_THRESH) & (f.d_label[rows, None] == f.g_label[obj])).any(axis=1)
        ignored[rows] = hit & ~used[rows]
    return _Outcome(used, ignored, code, target, taken)


_RECALLS = np.arange(101) / 100  # 0, 0.01, ..., 1 as k / 100, as tidecv computes them


def _tide_map(label, score, tp, tie, npos, num_classes: int) -> float:
    """tidecv's mAP: per class, points sorted by (-score, tie); COCO-style 101-point AP; classes with
    objects or points count (a class with points but no objects has AP 0). NaN when none counts."""
    order = np.lexsort((tie, -score, label))
    label, tp = label[order], tp[order]
    bounds = np.searchsorted(label, np.arange(num_classes + 1))
    aps = []
    for c in range(num_classes):
        t = tp[bounds[c]:bounds[c + 1]]
        if len(t) == 0 and npos[c] <= 0:
            continue
        if npos[c] <= 0 or len(t) == 0:
            aps.append(0.0)
            continue
        ctp = np.cumsum(t, dtype=np.int64)
        prec = ctp / np.arange(1, len(t) + 1)
        rec = ctp / npos[c]
        prec = np.maximum.accumulate(prec[::-1])[::-1]  # the monotone envelope
        idx = np.searchsorted(rec, _RECALLS, side="left")  # the first point reaching each recall
        aps.append(float(np.where(idx < len(t), prec[np.minimum(idx, len(t) - 1)], 0.0).sum()) / len(_RECALLS))
    return float(np.mean(aps)) if aps else float("nan")


def analyse_errors(gts: Sequence[GroundTruth], dets: Sequence[Detections], num_classes: int, *,
                   max_dets: int = MAX_DETS) -> ErrorAnalysis:
    """TIDE's main and special errors of ``dets`` against ``gts`` (same images, same order; labels < num_classes).

    Objects flagged ``difficult`` or ``iscrowd`` are ignore regions of their
    class. Images are taken in the given order, which decides ties in score
    across images (tidecv: the order of ``images`` in the annotation file).
    """
    if len(gts) != len(dets):
        raise ValueError(f"{len(gts)} ground-truth images but {len(dets)} detection images")
    f = _flatten(gts, dets, max_dets)
    for what, labels in (("gts", f.g_label), ("dets", f.d_label)):
        if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
            raise ValueError(f"{what}: a label lies outside 0..{num_classes - 1}")
    out = _match(f, len(gts))
    reg_label = f.g_label[~f.g_ignore]
    best, usable = _claims(out, len(reg_label))
    missed = np.bincount(reg_label[~out.taken & ~usable], minlength=num_classes)
    base, main, special = _gains(f, out, best, reg_label, missed, num_classes)
    counts = {name: int(np.sum(out.code == kind)) for kind, name in _NAMES.items()}
    counts["Miss"] = int(missed.sum())
    return ErrorAnalysis(ap50=base, main=main, special=special, counts={k: counts[k] for k in MAIN_ERRORS})


_NAMES = {_CLS: "Cls", _LOC: "Loc", _BOTH: "Both", _DUPE: "Dupe", _BKG: "Bkg"}


def _claims(out: _Outcome, num_regular: int) -> tuple[np.ndarray, np.ndarray]:
    """A Loc/Cls error aimed at a free object claims it; the first claimant (highest score, then image order)
    is the one a fix turns into a true positive. Returns (best (D,) bool, claimed (R,) bool)."""
    claim = np.flatnonzero(((out.code == _LOC) | (out.code == _CLS)) & (out.target >= 0))
    claim = claim[~out.taken[out.target[claim]]]
    _, first = np.unique(out.target[claim], return_index=True)
    best = np.zeros(len(out.code), bool)
    best[claim[first]] = True
    claimed = np.zeros(num_regular, bool)
    claimed[out.target[claim]] = True
    return best, claimed


def _gains(f: _Flat, out: _Outcome, best, reg_label, missed, num_classes: int) -> tuple[float, dict, dict]:
    """(TIDE's AP@50, {main type: gain}, {special type: gain}) from the matched detections."""
    npos = np.bincount(reg_label, minlength=num_classes)
    pos = np.arange(len(f.d_img))
    orig = ~out.ignored  # a detection swallowed by an ignore region is not in the AP
    base = _tide_map(f.d_label[orig], f.d_score[orig], out.used[orig], pos[orig], npos, num_classes)
    tie = np.where(out.used, len(pos) + pos, pos)  # in a fixed AP, the errors come first on a tie

    def fixed(kind: int, npos_fixed=npos) -> float:
        keep = orig & (out.code != kind)
        fix = (out.code == kind) & best if kind in (_LOC, _CLS) else np.zeros(len(pos), bool)
        # a fixed Cls error becomes a detection of the object's class
        label = np.where(fix & (out.code == _CLS), reg_label[np.maximum(out.target, 0)], f.d_label)
        sel = keep | fix
        return _tide_map(label[sel], f.d_score[sel], out.used[sel] | fix[sel], tie[sel], npos_fixed, num_classes)

    main = {name: fixed(kind) for kind, name in _NAMES.items()}
    main["Miss"] = fixed(-2, npos - missed)  # no detection changes; the missed objects leave the count
    # a negative gain is a binning artefact and counts as 0 (as tidecv does); a fix that leaves no class to
    # evaluate (everything missed, nothing detected) has no defined gain: NaN (tidecv divides by zero there)
    main = {k: float(np.maximum(main[k] - base, 0.0)) for k in MAIN_ERRORS}
    fp_fixed = _tide_map(f.d_label[orig], out.used[orig].astype(np.float64), out.used[orig], tie[orig], npos,
                         num_classes)  # every true positive scored 1, every false positive 0
    fn_fixed = fixed(-2, npos - np.bincount(reg_label[~out.taken], minlength=num_classes))
    return base, main, {"FalsePos": fp_fixed - base, "FalseNeg": fn_fixed - base}


def analyse_error_files(gt, dets, split: str = "test") -> ErrorAnalysis:
    """``analyse_errors`` on files, as ``detladder eval --gt GT --dets DETS --errors`` reads them.

    GT is a VOC root (difficult objects become ignore regions) with a directory
    of devkit result files, or a COCO annotation JSON (crowds become ignore
    regions) with a COCO results JSON; COCO images are taken in the order the
    annotation file lists them, as tidecv does. ``InputError`` on bad input.
    """
    from pathlib import Path

    from eval import result_files
    from eval.coco_io import load_json

    gt, dets = Path(gt), Path(dets)
    if gt.is_dir():
        truth = result_files.read_voc_ground_truth(gt, split)
        detections, _ = result_files.read_voc_results(dets, split, truth.image_ids, truth.class_names)
        return analyse_errors(truth.gts, detections, len(truth.class_names))
    truth = result_files.read_coco_ground_truth(gt)
    detections = result_files.read_coco_results(dets, truth.image_ids, truth.category_ids)
    index = {image_id: k for k, image_id in enumerate(truth.image_ids)}
    order = [index[im["id"]] for im in load_json(gt)["images"]]  # ids were checked by the reader
    return analyse_errors([truth.gts[k] for k in order], [detections[k] for k in order], len(truth.class_names))
