"""Evaluate detection files against ground-truth files: the library call behind ``detladder eval --gt --dets``.

GT is a VOC root (a directory) or a COCO annotation JSON (a file); DETS is,
respectively, a directory of devkit result files or a COCO results JSON. The
protocol is independent of the format: ``voc07`` on COCO files treats crowds
as difficult; ``coco`` on VOC files takes box areas and no crowds.
"""

from __future__ import annotations

import os
from pathlib import Path

from eval.errors import InputError
from eval.types import PROTOCOLS, EvalResult

BACKENDS = ("ours", "pycocotools")


def evaluate_files(gt: str | os.PathLike, dets: str | os.PathLike, protocol: str, split: str = "test",
                   backend: str = "ours") -> EvalResult:
    """Read both files, check them, and evaluate; ``InputError`` on any bad input.

    ``split`` is used for VOC roots and result files only. ``backend="pycocotools"``
    (coco protocol on COCO JSON only) runs pycocotools' COCOeval as an oracle.
    """
    gt, dets = Path(gt), Path(dets)
    if protocol not in PROTOCOLS:
        raise InputError(None, f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    if backend not in BACKENDS:
        raise InputError(None, f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    for path in (gt, dets):
        if not path.exists():
            raise InputError(path, "not found")
    if gt.is_dir() != dets.is_dir():
        raise InputError(dets, "a VOC root (directory) as --gt needs a directory of comp4_det_<split>_<class>.txt "
                               "files as --dets, and a COCO annotation JSON needs a COCO results JSON")
    from eval import coco_io

    if backend == "pycocotools":
        if protocol != "coco" or gt.is_dir():
            raise InputError(None, "--backend pycocotools evaluates the coco protocol on COCO JSON files only")
        from eval.coco_backend import evaluate_with_pycocotools

        truth = coco_io.read_coco_ground_truth(gt)
        coco_io.read_coco_results(dets, *_coco_ids(truth))  # our checks and messages before pycocotools runs
        return evaluate_with_pycocotools(gt, dets)
    if gt.is_dir():
        from eval import result_files  # the VOC readers (XML); the COCO path below does without them
        from eval.mean_ap import evaluate

        truth = result_files.read_voc_ground_truth(gt, split)
        # a class without a result file has no detections (AP 0); but no file at all for the split is a mistake
        detections, with_files = result_files.read_voc_results(dets, split, truth.image_ids, truth.class_names)
        if not with_files:
            raise InputError(dets, _why_no_result_file(dets, split, truth.class_names))
        return evaluate(truth.gts, detections, truth.class_names, protocol, report_classes=with_files)
    from eval.coco_io import read_coco_results_flat, scan_in_background
    from eval.mean_ap import evaluate_flat

    scanned = scan_in_background(dets)  # the results file is scanned while the annotations are parsed
    truth = coco_io.read_coco_ground_truth(gt, per_image=False)  # flat arrays only, no per-image split
    flat_dets = read_coco_results_flat(dets, *_coco_ids(truth), scanned=scanned)
    return evaluate_flat(truth.flat, flat_dets, len(truth.image_ids), truth.class_names, protocol)


def _coco_ids(truth) -> tuple[list, list]:
    return truth.image_ids, truth.category_ids


def _why_no_result_file(directory: Path, split: str, class_names) -> str:
    """Why no ``comp4_det_<split>_<class>.txt`` of ``directory`` matched: empty, other splits, other classes."""
    names = sorted(p.name for p in directory.iterdir() if p.name.startswith("comp4_det_") and p.suffix == ".txt")
    wanted = f"no comp4_det_{split}_<class>.txt result file for split {split!r}"
    if not names:
        return f"{wanted}: the folder holds no comp4_det_*.txt files at all (mAP would be 0)"
    splits = set()
    for name in names:
        stem = name[len("comp4_det_"):-len(".txt")]
        for cls in class_names:
            if stem.endswith(f"_{cls}") and stem != f"{split}_{cls}":
                splits.add(stem[: -len(cls) - 1])
    if splits:
        return f"{wanted}, only for split(s) {', '.join(map(repr, sorted(splits)))}; pass --split to match them"
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    return (f"{wanted}: its files ({shown}) name none of the dataset's classes "
            f"({', '.join(class_names[:6])}{', ...' if len(class_names) > 6 else ''})")
