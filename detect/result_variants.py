"""Any detector's result files as a ``compare`` variant, and the analysis every variant's row carries.

``detladder compare --results NAME=PATH`` takes PATH as a COCO results JSON
(``image_id`` = the VOC image id, ``category_id`` = 1..C in the dataset's
class order, as ``detladder eval --config`` writes it) or a folder of VOC
devkit files ``comp4_det_<split>_<class>.txt``. Such a row is evaluated by the
same calculator on the same images as the configs' rows and has mAP, per-class
AP, PR curves, TIDE errors and breakdowns; its timing, parameters and training
are not measured (null).

:func:`analysis_fields` is what every row gets beside its mAP: ``"errors"``
(``eval.error_analysis``) and ``"breakdowns"`` (``eval.breakdowns``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

from eval.errors import InputError

RUNG = "external results"


def parse_results_option(value: str) -> tuple[str, Path]:
    """``NAME=PATH`` -> (name, path); ``InputError`` naming PATH for a missing ``=``, an empty name or no file."""
    name, sep, path = value.partition("=")
    if not sep or not name.strip() or not path:
        raise InputError(value, "--results wants NAME=PATH (a COCO results JSON or a folder of "
                                "comp4_det_<split>_<class>.txt files)")
    if not Path(path).exists():
        raise InputError(path, "results not found")
    return name.strip(), Path(path)


def image_areas(dataset) -> list[float]:
    """Pixel area of every image of a ``detect.data.voc.VOCDataset``: from the XML, else the image header."""
    from proposals.images import probe_image

    areas = []
    for i, ann in enumerate(dataset.annotations):
        if ann.width is None or ann.height is None:
            w, h = probe_image(dataset.image_path(i), dataset.max_pixels)
        else:
            w, h = ann.width, ann.height
        areas.append(float(w) * float(h))
    return areas


def analysis_fields(gts, dets, class_names: Sequence[str], areas: Sequence[float], protocol: str) -> dict:
    """``{"errors": TIDE errors, "breakdowns": by objects per image, by size, CorLoc}`` of one variant."""
    from eval.breakdowns import breakdowns
    from eval.error_analysis import analyse_errors

    return {"errors": analyse_errors(gts, dets, len(class_names)).to_json(),
            "breakdowns": breakdowns(gts, dets, class_names, areas, protocol)}


_RESULT_FILE = re.compile(r"^comp\d*_det_(?P<split>.+?)_(?P<cls>[^_]+(?:_[^_]+)*)\.txt$")


def _check_voc_folder(folder: Path, split: str, class_names: Sequence[str]) -> None:
    """A folder must hold this split's result files and name only known classes."""
    prefix = f"comp4_det_{split}_"
    files = sorted(p.name for p in folder.glob("comp*_det_*.txt"))
    ours = [f for f in files if f.startswith(prefix)]
    if not ours:
        others = sorted({m.group("split").split("_")[0] for f in files if (m := _RESULT_FILE.match(f))})
        found = f"it holds result files of split {', '.join(map(repr, others))}" if others else "it holds none"
        raise InputError(folder, f"no result files comp4_det_{split}_<class>.txt for split {split!r}; {found}")
    for f in ours:
        name = f[len(prefix):-len(".txt")]
        if name not in class_names:
            known = ", ".join(class_names[:6]) + (", ..." if len(class_names) > 6 else "")
            raise InputError(folder / f, f"unknown class name {name!r} (classes: {known})")


def read_results(path: Path, image_ids: Sequence[str], class_names: Sequence[str], split: str):
    """Detections per image of ``image_ids`` from a results folder or a COCO results JSON.

    ``InputError`` names the file: another split, an unknown class or image id, a malformed line or entry.
    """
    from eval import result_files

    if path.is_dir():
        _check_voc_folder(path, split, class_names)
        dets, _ = result_files.read_voc_results(path, split, image_ids, class_names)
        return dets
    category_ids = list(range(1, len(class_names) + 1))
    try:
        return result_files.read_coco_results(path, list(image_ids), category_ids)
    except InputError:
        numeric = all(i.isdigit() for i in image_ids) and len({int(i) for i in image_ids}) == len(image_ids)
        if not numeric:
            raise
        # image ids written as numbers (000123 -> 123): read again against the numeric ids
        return result_files.read_coco_results(path, [int(i) for i in image_ids], category_ids)


def results_row(name: str, path: Path, dataset, split: str, protocol: str, example_ids: Sequence[str],
                areas: Sequence[float]) -> dict:
    """The metrics.json row of result files evaluated on ``dataset`` (a VOCDataset of ``split``)."""
    from detect.compare_rows import curve_json, example_detections, finite
    from eval.mean_ap import evaluate

    class_names = list(dataset.class_names)
    gts = [{"boxes": a.boxes, "labels": a.labels, "difficult": a.difficult, "image_id": a.image_id}
           for a in dataset.annotations]
    dets = read_results(Path(path), dataset.image_ids, class_names, split)
    result = evaluate(gts, dets, class_names, protocol, report_classes=class_names)
    index = {image_id: k for k, image_id in enumerate(dataset.image_ids)}
    return {
        "name": name, "config": str(path), "status": "ok", "error": None, "rung": RUNG,
        "proposal_source": "not measured (result files)", "region_classifier": "not measured (result files)",
        "mAP": finite(result.mAP),
        "per_class": {c: finite(result.per_class.get(c)) for c in class_names},
        "seconds_per_image": {"proposals": None, "network": None, "total": None},
        "params": None, "train_seconds": None,
        "curves": {"pooled": curve_json(result.pooled) if len(result.pooled.recall) else None,
                   "per_class": {c: curve_json(result.curves.get(c)) for c in class_names}},
        "examples": {i: example_detections(dets[index[i]], class_names) for i in example_ids},
        **analysis_fields(gts, dets, class_names, areas, protocol),
    }


def failed_results_row(name: str, path: Path, error: str) -> dict:
    """The row of result files that could not be read: ``error`` names the file and what is wrong."""
    return {"name": name, "config": str(path), "status": "failed", "error": error, "rung": RUNG,
            "proposal_source": None, "region_classifier": None, "mAP": None, "per_class": {},
            "seconds_per_image": {"proposals": None, "network": None, "total": None}, "params": None,
            "train_seconds": None, "curves": {"pooled": None, "per_class": {}}, "examples": {}}
