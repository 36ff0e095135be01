"""The one mAP calculator: ``evaluate`` (pure) and ``MeanAPEvaluator`` (reset / update / compute).

Every caller — ``detladder eval``, the training loop's validation, ``compare``
and proposal recall — goes through here. Input per image is a ``GroundTruth``
and a ``Detections`` dict (``eval.types``); the protocols are ``voc07``,
``voc12`` (``eval.voc_ap``) and ``coco`` (``eval.coco_ap``).

    >>> result = evaluate(gts, dets, class_names, "voc07")
    >>> result.mAP, result.per_class["cat"]
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from eval.coco_ap import coco_evaluate
from eval.matching import FlatDets, FlatGT, flatten_detections, flatten_ground_truth
from eval.types import PROTOCOLS, Detections, EvalResult, GroundTruth, PRCurve
from eval.voc_ap import voc_evaluate

__all__ = ["evaluate", "evaluate_flat", "MeanAPEvaluator", "EvalResult", "PRCurve", "GroundTruth", "Detections", "PROTOCOLS"]


def evaluate(
    gts: Sequence[GroundTruth],
    dets: Sequence[Detections],
    class_names: Sequence[str],
    protocol: str,
    *,
    report_classes: Iterable[str] = (),
) -> EvalResult:
    """Evaluate detections against ground truth; ``gts[i]`` and ``dets[i]`` are the same image.

    ``per_class`` keys, in ``class_names`` order — voc: every class with an
    object (difficult or not), a detection, or a name in ``report_classes``
    (e.g. a class with an empty result file); coco: every class, as
    pycocotools evaluates every category of the ground truth. A class without
    (non-difficult / non-crowd) objects gets None and stays out of the mean.
    For coco, images are taken in the given order where scores tie
    (pycocotools sorts image ids; ``eval.coco_io.read_coco_ground_truth`` does too).
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    if len(gts) != len(dets):
        raise ValueError(f"{len(gts)} ground-truth images but {len(dets)} detection images")
    names = list(class_names)
    unknown = set(report_classes) - set(names)
    if unknown:
        raise ValueError(f"report_classes names classes not in class_names: {sorted(unknown)}")
    return evaluate_flat(flatten_ground_truth(gts, len(names)), flatten_detections(dets, len(names)), len(gts),
                         names, protocol, report_classes=report_classes)


def evaluate_flat(gt: FlatGT, det: FlatDets, num_images: int, class_names: Sequence[str], protocol: str, *,
                  report_classes: Iterable[str] = ()) -> EvalResult:
    """``evaluate`` on already flattened arrays (``eval.matching``): what file readers use to skip the per-image split."""
    names = list(class_names)
    if protocol == "coco":
        stats, ap, curves, pooled = coco_evaluate(gt, det, num_images, len(names))
        keys = range(len(names))
        m_ap = stats[0]
    else:
        stats = None
        ap, curves, pooled = voc_evaluate(gt, det, num_images, len(names), protocol)
        present = np.zeros(len(names), bool)
        present[gt.label] = True
        present[det.label] = True
        for name in report_classes:
            present[names.index(name)] = True
        keys = np.flatnonzero(present)
        valid = ap[keys][~np.isnan(ap[keys])]
        m_ap = float(np.mean(valid)) if len(valid) else float("nan")
    per_class = {names[k]: (None if np.isnan(ap[k]) else float(ap[k])) for k in keys}
    return EvalResult(
        protocol=protocol,
        mAP=float(m_ap),
        per_class=per_class,
        curves={names[k]: PRCurve(precision=p, recall=r) for k, (p, r) in curves.items() if names[k] in per_class},
        pooled=PRCurve(precision=pooled[0], recall=pooled[1]),
        stats=stats,
    )


class MeanAPEvaluator:
    """Accumulates images batch by batch, then evaluates them all at once.

    ``update(gts, dets)`` takes lists of per-image dicts (same length, same
    images); ``compute()`` is ``evaluate`` over everything seen since
    ``reset()``. Arrays are copied to numpy on ``update`` so callers may
    reuse their buffers.
    """

    def __init__(self, class_names: Sequence[str], protocol: str):
        if protocol not in PROTOCOLS:
            raise ValueError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
        self.class_names = list(class_names)
        self.protocol = protocol
        self.reset()

    def reset(self) -> None:
        """Forget every image seen so far."""
        self._gts: list[GroundTruth] = []
        self._dets: list[Detections] = []

    def update(self, gts: Sequence[GroundTruth], dets: Sequence[Detections]) -> None:
        """Add images: ``gts[i]`` and ``dets[i]`` describe the same image."""
        if len(gts) != len(dets):
            raise ValueError(f"update got {len(gts)} ground-truth images and {len(dets)} detection images")
        self._gts.extend({k: (_to_numpy(v) if k != "image_id" else v) for k, v in g.items()} for g in gts)
        self._dets.extend({k: _to_numpy(v) for k, v in d.items()} for d in dets)

    def __len__(self) -> int:
        return len(self._gts)

    def compute(self) -> EvalResult:
        """The result over every image added since the last ``reset``."""
        return evaluate(self._gts, self._dets, self.class_names, self.protocol)


def _to_numpy(value) -> np.ndarray:
    """A copy as a numpy array; tensors (on any device) are detached and moved to the CPU first."""
    if hasattr(value, "detach"):  # a torch tensor, without importing torch here
        value = value.detach().cpu().numpy()
    return np.array(value)
