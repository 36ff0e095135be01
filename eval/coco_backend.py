"""The optional pycocotools backend: COCOeval itself, for users who want the reference tool's numbers.

The only module of ``eval/`` that imports pycocotools (lazily). Input files
are expected to have passed ``eval.coco_io``'s checks already.
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

import numpy as np

from eval.errors import InputError
from eval.types import EvalResult, PRCurve


def _load_results(COCO, coco_gt, results: list):
    """``coco_gt.loadRes(results)``; an empty COCO set for an empty list, which loadRes cannot take."""
    if results:
        return coco_gt.loadRes(results)
    coco_dt = COCO()
    coco_dt.dataset = {"images": coco_gt.dataset["images"], "categories": coco_gt.dataset["categories"],
                       "annotations": []}
    coco_dt.createIndex()
    return coco_dt


def evaluate_with_pycocotools(gt_json: str | os.PathLike, results_json: str | os.PathLike) -> EvalResult:
    """COCOeval(iouType="bbox") evaluate + accumulate + summarize, packed as an ``EvalResult``.

    ``per_class`` is the mean precision over IoU and recall thresholds at
    area=all, maxDets=100 (None for a category without objects); curves are
    the IoU=.50 precision at the 101 recall thresholds. ``pooled`` is left empty.
    Whatever pycocotools raises becomes an ``InputError`` naming the file it was reading.
    """
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError:
        raise InputError(None, "--backend pycocotools needs pycocotools (pip install pycocotools)") from None

    from eval.coco_io import load_json

    stage = Path(gt_json)  # the file pycocotools is reading, for the message if it fails
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress to stdout
            coco_gt = COCO()
            coco_gt.dataset = load_json(gt_json)
            coco_gt.createIndex()
            stage = Path(results_json)
            coco_dt = _load_results(COCO, coco_gt, load_json(results_json))
            stage = Path(gt_json)  # past loadRes, what COCOeval reads that may be missing is the annotations'
            evaluator = COCOeval(coco_gt, coco_dt, iouType="bbox")
            evaluator.evaluate()
            evaluator.accumulate()
            evaluator.summarize()
    except InputError:
        raise
    except Exception as exc:  # pycocotools' own KeyError / AssertionError / ...: one line, exit 2
        detail = f"{exc.__class__.__name__}: {exc}".splitlines()[0][:200]
        raise InputError(stage, f"pycocotools could not evaluate it ({detail})") from None
    cat_ids = evaluator.params.catIds
    names = [coco_gt.cats[c]["name"] for c in cat_ids]
    precision = evaluator.eval["precision"]  # (T, R, K, A, M)
    per_class, curves = {}, {}
    for k, name in enumerate(names):
        p = precision[:, :, k, 0, -1]
        per_class[name] = float(np.mean(p[p > -1])) if (p > -1).any() else None
        if per_class[name] is not None:
            curves[name] = PRCurve(precision=precision[0, :, k, 0, -1].copy(), recall=evaluator.params.recThrs.copy())
    stats = [float(s) for s in evaluator.stats]
    return EvalResult(protocol="coco", mAP=stats[0], per_class=per_class, curves=curves, stats=stats)
