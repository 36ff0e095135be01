"""Model evaluation: run a detector over a dataset split and score it with the shared calculator.

``evaluate_model`` is the library call behind ``detladder eval --config``: it
writes the detections as VOC devkit result files and as a COCO results JSON
beside the ``--json`` output, then evaluates the written result files with
``eval.file_eval.evaluate_files`` — the very code path of ``eval --gt --dets``,
so both commands give identical numbers. Under torchrun every rank runs its
share of the images and rank 0 gathers, writes and evaluates.

``detect_split`` is the in-memory part, also used for validation during training.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from detect.config import Config
from detect.data.voc import VOCDataset
from detect.detectors.base import StageTimes
from detect.engine import distributed
from detect.inference import load_detector, run_detector
from detect.proposal_route import split_proposals
from eval.errors import InputError
from eval.types import Detections, EvalResult


def detect_split(model: torch.nn.Module, config: Config, voc: VOCDataset, *, dist=None,
                 progress: bool = False) -> tuple[list[Detections], list[StageTimes]]:
    """Detections and stage times for every image of ``voc``, in dataset order (gathered on every rank).

    Precomputed proposals come from the split's cache (their compute seconds from
    the cache too; ranks share the computing); rank ``r`` of ``K`` detects images ``r, r+K, ...``.
    """
    dist = dist or distributed.DistInfo()
    cached = split_proposals(config, voc, dist=dist, progress=progress)
    mine = list(range(dist.rank, len(voc), dist.world_size))
    batch = config.test.batch_size
    results: dict[int, tuple[Detections, StageTimes]] = {}
    bar = _make_bar(progress and dist.is_main, len(mine))
    for start in range(0, len(mine), batch):
        idx = mine[start : start + batch]
        images = [voc[i][0] for i in idx]
        kwargs = {}
        if cached is not None:
            ids = [voc.annotations[i].image_id for i in idx]
            kwargs = {"proposals": [cached.boxes[k] for k in ids], "proposal_seconds": [cached.seconds[k] for k in ids]}
        dets, times = run_detector(model, config, images, **kwargs)
        results.update({i: (d, t) for i, d, t in zip(idx, dets, times)})
        if bar is not None:
            bar.advance(bar.task_ids[0], len(idx))
    if bar is not None:
        bar.stop()
    merged: dict[int, tuple[Detections, StageTimes]] = {}
    for part in distributed.gather_objects(dist, results):
        merged.update(part)
    ordered = [merged[i] for i in range(len(voc))]
    return [d for d, _ in ordered], [t for _, t in ordered]


def _make_bar(enabled: bool, total: int):
    """A Rich progress bar on stderr, or None."""
    if not enabled:
        return None
    from rich.console import Console
    from rich.progress import Progress

    bar = Progress(transient=True, console=Console(stderr=True))
    bar.start()
    bar.add_task("detecting", total=total)
    return bar


def ground_truth(voc: VOCDataset) -> list[dict]:
    """The split's annotations as the calculator's ``GroundTruth`` dicts."""
    return [{"boxes": a.boxes, "labels": a.labels, "difficult": a.difficult, "image_id": a.image_id} for a in voc.annotations]


def evaluate_detections(voc: VOCDataset, dets: list[Detections], protocol: str) -> EvalResult:
    """Score in-memory detections of ``voc``'s images (validation during training)."""
    from eval.mean_ap import evaluate

    return evaluate(ground_truth(voc), dets, voc.class_names, protocol)


def result_paths(json_out: str | os.PathLike) -> tuple[Path, Path]:
    """(VOC result-file directory, COCO results JSON) beside ``json_out``: ``<stem>_voc/``, ``<stem>_coco.json``."""
    out = Path(json_out)
    return out.with_name(f"{out.stem}_voc"), out.with_name(f"{out.stem}_coco.json")


def evaluate_model(config_path, weights, data_root, split: str, protocol: str, json_out, overrides=(),
                   device: str | None = "cpu", progress: bool = False) -> EvalResult:
    """Run the model over ``data_root``'s ``split``, write result files beside ``json_out``, evaluate them.

    Writes ``json_out`` (``{"protocol", "mAP", "per_class"[, "stats"]}``), the
    devkit files ``<stem>_voc/comp4_det_<split>_<class>.txt`` and ``<stem>_coco.json``
    (category ids 1..C in class-list order). Returns the ``EvalResult``.
    """
    from eval.file_eval import evaluate_files
    from eval.files import atomic_write_json
    from eval.result_files import write_coco_results, write_voc_results

    dev = distributed.resolve_device(device)
    dist = distributed.setup(dev)
    model, config, class_names = load_detector(weights, config_path, dev, overrides)
    voc = VOCDataset(data_root, split, class_names=class_names, on_error="raise", max_pixels=config.data.max_image_pixels)
    if len(voc) == 0:
        raise InputError(Path(data_root) / "ImageSets" / "Main" / f"{split}.txt", "the split lists no images")
    dets, _ = detect_split(model, config, voc, dist=dist, progress=progress)
    result = None
    if dist.is_main:
        voc_dir, coco_json = result_paths(json_out)
        write_voc_results(voc_dir, split, voc.image_ids, dets, class_names)
        write_coco_results(coco_json, voc.image_ids, dets, list(range(1, len(class_names) + 1)))
        result = evaluate_files(data_root, voc_dir, protocol, split)
        atomic_write_json(json_out, result.to_json())
    result = distributed.broadcast_object(dist, result)
    return result

