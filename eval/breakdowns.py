"""Breakdowns of one variant's detections by the shared mAP calculator on subsets, and CorLoc. Numpy only.

* **Objects per image**: mAP on the images with 1, 2-3 and 4+ objects
  (difficult / crowd objects not counted; images without objects are in no bin).
* **Object size**, relative to the image so that it means the same at 128 px
  and at 500 px: an object's relative side is ``sqrt(box area / image area)``;
  ``small`` < 1/8 (under 1.6% of the image), ``medium`` 1/8-3/8, ``large`` > 3/8
  (over 14%); at 500 px that is 62 and 187 px sides, at 128 px 16 and 48 px.
  Per range, as COCO does for its areas: objects outside it are ignored
  (treated as difficult), and so are false positives outside it (matched to
  nothing counted, or a second match); everything else is the VOC calculator's
  rules unchanged.
* **CorLoc** on the images with exactly one object: the fraction whose top
  detection (highest score, any class) has that object's class and IoU > 0.5.

Because VOC matching picks a detection's object without looking at what
earlier detections took, dropping the unmatched out-of-range detections
leaves every other detection's outcome as it was: the size AP is exact, not
an approximation, of that rule.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from eval.matching import flatten_detections, flatten_ground_truth, gathered_iou
from eval.mean_ap import evaluate
from eval.types import Detections, GroundTruth
from eval.voc_ap import match_voc

COUNT_BINS: tuple[tuple[str, int, float], ...] = (("1", 1, 1), ("2-3", 2, 3), ("4+", 4, np.inf))
#: relative side sqrt(box area / image area): small below the first, large above the second
SIZE_THRESHOLDS: tuple[float, float] = (0.125, 0.375)  # exact in binary: no rounding at the edges
SIZE_NAMES: tuple[str, ...] = ("small", "medium", "large")


def _counted(gt: GroundTruth) -> np.ndarray:
    """Which objects count: neither difficult nor crowd."""
    n = len(np.asarray(gt["labels"]).reshape(-1))
    keep = np.ones(n, bool)
    for name in ("difficult", "iscrowd"):
        if gt.get(name) is not None:
            keep &= ~np.asarray(gt[name], bool).reshape(-1)
    return keep


def _size_bin(boxes: np.ndarray, image_area) -> np.ndarray:
    """(N, 4) boxes and their image's area (scalar or (N,)) -> (N,) 0 small, 1 medium, 2 large by relative side.

    A side exactly at a threshold goes to the larger range.
    """
    side = np.sqrt(_area(boxes) / image_area)
    return np.searchsorted(np.array(SIZE_THRESHOLDS), side, side="right")


def _json(value: float) -> float | None:
    return None if value != value else float(value)


def breakdown_by_count(gts, dets, class_names, protocol: str = "voc12") -> dict:
    """``{bin: {"mAP", "images", "objects"}}`` for the bins of ``COUNT_BINS``; mAP null for an empty bin."""
    counts = np.array([int(_counted(g).sum()) for g in gts], np.int64)
    out = {}
    for name, lo, hi in COUNT_BINS:
        pick = np.flatnonzero((counts >= lo) & (counts <= hi))
        m_ap = float("nan")
        if len(pick):
            m_ap = evaluate([gts[i] for i in pick], [dets[i] for i in pick], class_names, protocol).mAP
        out[name] = {"mAP": _json(m_ap), "images": int(len(pick)), "objects": int(counts[pick].sum())}
    return out


def breakdown_by_size(gts, dets, class_names, image_areas: Sequence[float], protocol: str = "voc12") -> dict:
    """``{"small" | "medium" | "large": {"mAP", "objects"}}`` with the rule of the module docstring."""
    if protocol not in ("voc07", "voc12"):
        raise ValueError(f"size breakdowns use a VOC protocol (voc07 or voc12), not {protocol!r}")
    areas = np.asarray(image_areas, np.float64)
    if len(areas) != len(gts) or (len(areas) and not (areas > 0).all()):
        raise ValueError("image_areas needs one positive area per image")
    out = {}
    for k, name in enumerate(SIZE_NAMES):
        sub_gts, sub_dets, objects = [], [], 0
        for g, a in zip(gts, areas):
            boxes = np.asarray(g["boxes"], np.float64).reshape(-1, 4)
            inside = _size_bin(boxes, a) == k
            objects += int((inside & _counted(g)).sum())
            sub_gts.append({"boxes": boxes, "labels": g["labels"], "difficult": ~(inside & _counted(g))})
        keep = _kept_detections(sub_gts, dets, len(class_names), areas, k)
        for d, sel in zip(dets, keep):
            sub_dets.append({key: np.asarray(v)[sel] for key, v in d.items() if key in
                             ("boxes", "scores", "labels", "order", "box_area")})
        m_ap = evaluate(sub_gts, sub_dets, class_names, protocol).mAP if objects else float("nan")
        out[name] = {"mAP": _json(m_ap), "objects": objects}
    return out


def _kept_detections(sub_gts, dets, num_classes: int, areas: np.ndarray, k: int) -> list[np.ndarray]:
    """Per image, which detections stay in size range k: all but the false positives outside the range.

    A false positive is the shared calculator's (``eval.voc_ap.match_voc``):
    matched to nothing counted, or a second match to a taken object.
    """
    flat_g, flat_d = flatten_ground_truth(sub_gts, num_classes), flatten_detections(dets, num_classes)
    idx, _, fp = match_voc(flat_g, flat_d, len(sub_gts))
    false_pos = np.zeros(len(flat_d.image), bool)
    false_pos[idx[fp]] = True
    outside = _size_bin(flat_d.boxes, areas[flat_d.image]) != k
    drop = false_pos & outside
    bounds = np.searchsorted(flat_d.image, np.arange(len(dets) + 1))  # flat detections are image by image
    return [~drop[bounds[i]:bounds[i + 1]] for i in range(len(dets))]


def _area(boxes: np.ndarray) -> np.ndarray:
    return np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)


def corloc(gts: Sequence[GroundTruth], dets: Sequence[Detections]) -> dict:
    """``{"value", "images", "correct"}``: CorLoc on the images with exactly one counted object (value null if none).

    An image with uncounted (difficult) objects besides its one object still
    counts; its top detection is judged against the counted object only.
    """
    images = correct = 0
    for g, d in zip(gts, dets):
        keep = _counted(g)
        if keep.sum() != 1:
            continue
        images += 1
        scores = np.asarray(d["scores"], np.float64).reshape(-1)
        if len(scores) == 0:
            continue
        top = int(np.argmax(scores))  # the first on a tie
        box = np.asarray(d["boxes"], np.float64).reshape(-1, 4)[top:top + 1]
        obj = np.asarray(g["boxes"], np.float64).reshape(-1, 4)[keep][None]  # (1, 1, 4)
        iou = gathered_iou(box, obj)[0, 0]
        label_ok = int(np.asarray(d["labels"]).reshape(-1)[top]) == int(np.asarray(g["labels"]).reshape(-1)[keep][0])
        correct += int(label_ok and iou > 0.5)
    return {"value": correct / images if images else None, "images": images, "correct": correct}


def breakdowns(gts: Sequence[GroundTruth], dets: Sequence[Detections], class_names: Sequence[str],
               image_areas: Sequence[float], protocol: str = "voc12") -> dict:
    """Every breakdown of one variant, as ``metrics.json`` holds it.

    ``{"protocol", "by_count": {...}, "by_size": {...}, "size_thresholds": [0.125, 0.375], "corloc": {...}}``;
    ``image_areas`` (N,) pixels, ``gts[i]`` / ``dets[i]`` the same image. A coco
    protocol is answered with voc12 (the breakdowns are AP at IoU > 0.5).
    """
    protocol = protocol if protocol in ("voc07", "voc12") else "voc12"
    return {"protocol": protocol, "by_count": breakdown_by_count(gts, dets, class_names, protocol),
            "by_size": breakdown_by_size(gts, dets, class_names, image_areas, protocol),
            "size_thresholds": list(SIZE_THRESHOLDS), "corloc": corloc(gts, dets)}
