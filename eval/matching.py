"""Flat arrays and (image, class) pair grouping shared by the VOC and COCO protocols.

The per-image dicts of ``eval.types`` are concatenated into flat arrays once;
every later step is vectorised over all images and classes at once:

* ground truth is sorted by pair key ``label * num_images + image`` (stable,
  so annotation order is kept inside a pair);
* each detection learns the slice ``[start, start + count)`` of its pair's
  ground truth;
* detections are bucketed by ``count`` so that the IoU of every detection with
  every object of its pair is one dense ``(n, count)`` array per bucket
  (``eval.iou.gathered_iou``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np

from eval.iou import gathered_iou  # noqa: F401  (re-exported: the pair IoU of the buckets below)
from eval.types import Detections, GroundTruth


@dataclass
class FlatGT:
    """All ground truth of a dataset, sorted by (label, image, annotation order). Shapes (N,) / (N, 4)."""

    image: np.ndarray  # int64 image index
    label: np.ndarray  # int64 class index
    boxes: np.ndarray  # float64 x1, y1, x2, y2
    difficult: np.ndarray  # bool
    iscrowd: np.ndarray  # bool
    area: np.ndarray  # float64, COCO's area-range test value
    box_area: np.ndarray  # float64, the box's own area (IoU unions)
    key: np.ndarray  # int64 pair key, non-decreasing


@dataclass
class FlatDets:
    """All detections of a dataset, in input order (image by image). Shapes (D,) / (D, 4)."""

    image: np.ndarray  # int64
    label: np.ndarray  # int64
    boxes: np.ndarray  # float64
    scores: np.ndarray  # float64
    order: np.ndarray  # int64 tie-break key among equal scores of one class
    box_area: np.ndarray  # float64, the box's own area (IoU unions, COCO's area ranges)


def _field(d: dict, name: str, dtype, shape_tail: tuple, i: int, what: str) -> np.ndarray:
    arr = np.asarray(d[name], dtype=dtype)
    if arr.size == 0:
        return arr.reshape((0,) + shape_tail)
    if arr.ndim != 1 + len(shape_tail) or arr.shape[1:] != shape_tail:
        raise ValueError(f"{what}[{i}]['{name}'] has shape {arr.shape}, expected (N, {', '.join(map(str, shape_tail))})"
                         if shape_tail else f"{what}[{i}]['{name}'] has shape {arr.shape}, expected (N,)")
    return arr


def _box_area(d: dict, boxes: np.ndarray, i: int, what: str) -> np.ndarray:
    """``d["box_area"]`` when given (COCO readers pass w * h exactly as pycocotools computes it), else from the box."""
    if d.get("box_area") is not None:
        return _field(d, "box_area", np.float64, (), i, what)
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def flatten_ground_truth(gts: Sequence[GroundTruth], num_classes: int) -> FlatGT:
    """Concatenate per-image ground truth; raise ValueError on inconsistent shapes or labels."""
    names = ("image", "label", "boxes", "difficult", "iscrowd", "area", "box_area")
    parts: dict[str, list[np.ndarray]] = {k: [] for k in names}
    for i, gt in enumerate(gts):
        boxes = _field(gt, "boxes", np.float64, (4,), i, "gts")
        n = len(boxes)
        box_area = _box_area(gt, boxes, i, "gts")
        row = {
            "image": np.full(n, i, np.int64),
            "label": _field(gt, "labels", np.int64, (), i, "gts"),
            "boxes": boxes,
            "difficult": _field(gt, "difficult", bool, (), i, "gts") if "difficult" in gt else np.zeros(n, bool),
            "iscrowd": _field(gt, "iscrowd", bool, (), i, "gts") if gt.get("iscrowd") is not None else np.zeros(n, bool),
            "area": _field(gt, "area", np.float64, (), i, "gts") if gt.get("area") is not None else box_area,
            "box_area": box_area,
        }
        if any(len(v) != n for v in row.values()):
            raise ValueError(f"gts[{i}]: boxes, labels, difficult, iscrowd, area and box_area differ in length")
        for k in names:
            parts[k].append(row[k])
    if gts:
        flat = {k: np.concatenate(v) for k, v in parts.items()}
    else:
        flat = {"image": np.zeros(0, np.int64), "label": np.zeros(0, np.int64), "boxes": np.zeros((0, 4)),
                "difficult": np.zeros(0, bool), "iscrowd": np.zeros(0, bool), "area": np.zeros(0),
                "box_area": np.zeros(0)}
    _check_labels(flat["label"], num_classes, "gts")
    return make_flat_gt(num_images=len(gts), **flat)


def make_flat_gt(image, label, boxes, difficult, iscrowd, area, box_area, num_images: int) -> FlatGT:
    """A ``FlatGT`` from per-object arrays in any order (sorted here by pair, stably)."""
    key = label * max(num_images, 1) + image
    idx = np.argsort(key, kind="stable")
    return FlatGT(image=image[idx], label=label[idx], boxes=boxes[idx], difficult=difficult[idx],
                  iscrowd=iscrowd[idx], area=area[idx], box_area=box_area[idx], key=key[idx])


def flatten_detections(dets: Sequence[Detections], num_classes: int) -> FlatDets:
    """Concatenate per-image detections in input order; raise ValueError on bad shapes or labels."""
    images, labels, boxes, scores, orders, areas = [], [], [], [], [], []
    have_order = len(dets) > 0 and all("order" in d for d in dets)
    for i, d in enumerate(dets):
        b = _field(d, "boxes", np.float64, (4,), i, "dets")
        s = _field(d, "scores", np.float64, (), i, "dets")
        lab = _field(d, "labels", np.int64, (), i, "dets")
        area = _box_area(d, b, i, "dets")
        if not len(b) == len(s) == len(lab) == len(area):
            raise ValueError(f"dets[{i}]: boxes, scores, labels and box_area differ in length")
        if have_order:
            orders.append(_field(d, "order", np.int64, (), i, "dets"))
        images.append(np.full(len(b), i, np.int64))
        labels.append(lab)
        boxes.append(b)
        scores.append(s)
        areas.append(area)
    if not images:
        return FlatDets(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 4)), np.zeros(0),
                        np.zeros(0, np.int64), np.zeros(0))
    flat = FlatDets(np.concatenate(images), np.concatenate(labels), np.concatenate(boxes), np.concatenate(scores),
                    np.concatenate(orders) if have_order else np.arange(sum(map(len, images)), dtype=np.int64),
                    np.concatenate(areas))
    _check_labels(flat.label, num_classes, "dets")
    if not np.isfinite(flat.scores).all():
        raise ValueError("dets: a score is NaN or infinite")
    return flat


def _check_labels(labels: np.ndarray, num_classes: int, what: str) -> None:
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"{what}: a label lies outside 0..{num_classes - 1} (labels are 0-based class indices)")


def pair_slices(gt: FlatGT, det_key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each detection's pair key: (start, count) of that pair's objects in ``gt``. (D,) int64 each."""
    if len(gt.key) == 0 or len(det_key) == 0:
        return np.zeros(len(det_key), np.int64), np.zeros(len(det_key), np.int64)
    size = int(max(gt.key[-1], det_key.max())) + 1
    if size <= 4 * (len(gt.key) + len(det_key)) + 1_000_000:  # a dense table beats a binary search per row
        counts = np.bincount(gt.key, minlength=size)
        starts = np.cumsum(counts) - counts
        return starts[det_key], counts[det_key]
    start = np.searchsorted(gt.key, det_key, side="left")
    end = np.searchsorted(gt.key, det_key, side="right")
    return start, end - start


def buckets(count: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (g, indices) for every distinct ``count`` value g > 0: the rows with exactly g objects."""
    if len(count) == 0:
        return
    idx = np.argsort(count, kind="stable")
    sorted_count = count[idx]
    values, first = np.unique(sorted_count, return_index=True)
    bounds = list(first) + [len(idx)]
    for k, g in enumerate(values):
        if g > 0:
            yield int(g), idx[bounds[k]:bounds[k + 1]]
