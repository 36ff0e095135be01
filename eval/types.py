"""The data that flows into and out of the mAP calculator (numpy only).

Per image, callers hand the engine a ``GroundTruth`` and a ``Detections``
dict (``gts[i]`` and ``dets[i]`` describe the same image) and get back an
``EvalResult``. Boxes are float ``[x1, y1, x2, y2]`` pixels, 0-based, x2/y2
exclusive (README.md, Datasets); labels are 0-based indices into the dataset's class
list (no background class).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import NotRequired, TypedDict

import numpy as np

PROTOCOLS: tuple[str, ...] = ("voc07", "voc12", "coco")


class GroundTruth(TypedDict):
    """One image's annotated objects.

    * ``boxes`` (G, 4) float, ``labels`` (G,) int, ``difficult`` (G,) bool:
      VOC protocols ignore detections matched to a difficult object.
    * ``iscrowd`` (G,) bool (optional, default all False): COCO crowd regions;
      the coco protocol ignores them and measures IoU against them as
      intersection over the detection's area, as pycocotools does.
    * ``area`` (G,) float (optional, default the box area): what the coco
      protocol's small/medium/large ranges test (COCO's segment area).
    * ``box_area`` (G,) float (optional, default ``(x2 - x1) * (y2 - y1)``):
      the box's own area for IoU; COCO readers pass ``w * h`` as the file
      states it, so IoU is bit-identical to pycocotools' even where
      ``(x + w) - x != w`` in floating point.
    * ``image_id`` (optional): the image's id, carried for messages and writers.
    """

    boxes: np.ndarray
    labels: np.ndarray
    difficult: np.ndarray
    iscrowd: NotRequired[np.ndarray]
    area: NotRequired[np.ndarray]
    box_area: NotRequired[np.ndarray]
    image_id: NotRequired[str | int]


class Detections(TypedDict):
    """One image's detections: ``boxes`` (D, 4) float, ``scores`` (D,) float, ``labels`` (D,) int.

    ``order`` (D,) int (optional) breaks ties between equal scores of one
    class: a lower value ranks first. Readers of VOC result files set it to
    the line number, so equal scores keep their order in the file as in the
    devkit; without it, ties keep image order, then position in the image.
    ``box_area`` (D,) float (optional): as in ``GroundTruth`` (COCO: ``w * h``).
    """

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    order: NotRequired[np.ndarray]
    box_area: NotRequired[np.ndarray]


@dataclass
class GroundTruthSet:
    """A dataset's ground truth as the file readers return it: ``gts[i]`` is image ``image_ids[i]``.

    Labels index ``class_names``. ``category_ids`` (COCO only) are the
    category ids in class-index order; ``flat`` (COCO only) the same objects
    as one ``eval.matching.FlatGT``.
    """

    gts: list[GroundTruth]
    image_ids: list
    class_names: tuple[str, ...]
    category_ids: list[int] | None
    source: Path
    flat: object | None = None


@dataclass
class PRCurve:
    """A precision/recall curve: two float64 arrays of equal length."""

    precision: np.ndarray
    recall: np.ndarray


@dataclass
class EvalResult:
    """What one evaluation gives.

    * ``mAP``: the mean of the non-null per-class APs (voc) or COCO's
      AP@[.50:.95] = ``stats[0]`` (coco); NaN when no class has ground truth.
    * ``per_class``: class name -> AP, or None for a class without
      (non-difficult / non-crowd) ground truth.
    * ``curves``: class name -> PR curve, for classes with an AP. voc: the raw
      cumulative arrays, one point per counted detection; coco: IoU=.50,
      area=all, maxDets=100 precision at the 101 recall thresholds.
    * ``pooled``: every detection matched within its class, then all classes
      pooled and sorted by score (the "all classes" PR plot).
    * ``stats``: coco only, the 12 numbers of pycocotools' ``COCOeval.stats``.
    """

    protocol: str
    mAP: float
    per_class: dict[str, float | None]
    curves: dict[str, PRCurve] = field(default_factory=dict)
    pooled: PRCurve = field(default_factory=lambda: PRCurve(np.zeros(0), np.zeros(0)))
    stats: list[float] | None = None

    def to_json(self) -> dict:
        """``{"protocol", "mAP", "per_class", ["stats"]}`` as ``detladder eval --json`` writes it.

        NaN (no ground truth at all) becomes ``null``; JSON has no NaN.
        """
        out: dict = {
            "protocol": self.protocol,
            "mAP": _json_float(self.mAP),
            "per_class": {name: _json_float(ap) for name, ap in self.per_class.items()},
        }
        if self.stats is not None:
            out["stats"] = [_json_float(s) for s in self.stats]
        return out


def _json_float(value: float | None) -> float | None:
    if value is None or value != value:  # NaN != NaN
        return None
    return float(value)


def detection_arrays(image_id, dets) -> tuple:
    """One image's detections as (boxes (D,4) float64, scores (D,) float64, labels (D,) int64).

    Writers call this so that a NaN or infinite value is refused before anything is written.
    """
    boxes = np.asarray(dets["boxes"], np.float64).reshape(-1, 4)
    scores = np.asarray(dets["scores"], np.float64).reshape(-1)
    labels = np.asarray(dets["labels"], np.int64).reshape(-1)
    if not (np.isfinite(boxes).all() and np.isfinite(scores).all()):
        raise ValueError(f"image {image_id!r}: a box or score is NaN or infinite")
    return boxes, scores, labels
