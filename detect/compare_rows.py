"""One variant's row of metrics.json: what it is (read off its parts), and what measuring it gives.

``measure_variant`` evaluates a trained detector on every image of the split with the shared
calculator and times it one image at a time (proposals and network apart, CPU seconds beside wall);
``failed_row`` is the row of a variant that did not finish. ``detect.compare`` runs the variants.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Sequence

from detect.compare_proposals import ProposalMemo

Log = Callable[[str], None]

#: Each proposal part in words, for the ladder table (precomputed: the method's name).
PROPOSAL_SOURCES: dict[str, str] = {
    "whole_image": "none (whole image)",
    "windows": "sliding windows",
    "rpn": "RPN on shared features",
}
_METHODS = {"selective_search": "Selective Search", "sliding_window": "sliding windows (precomputed)"}
_ROI_OPS = {"roi_pool": "RoI max pooling", "roi_align": "RoIAlign", "roi_align_matmul": "RoIAlign"}


def describe_rung(config) -> tuple[str, str]:
    """(proposal source, region classifier) of a config, in words for the ladder table: read off its parts."""
    model = config.model
    if model.proposals == "precomputed":
        source = _METHODS.get(model.precomputed.method, model.precomputed.method)
    else:
        source = PROPOSAL_SOURCES.get(model.proposals, model.proposals)
    if model.region_head == "global_pool":
        head = "global-pool head: class + one box"
    elif model.region_head == "crop":
        head = f"{model.crop.size} px crop-and-warp → backbone → {model.crop.head} head"
    else:
        head = f"{_ROI_OPS.get(model.roi_head.roi_op, model.roi_head.roi_op)} on shared features → MLP head"
    return source, head


def rung_name(config) -> str:
    """The rung label of a config's parts (``detect.build.rung_label``, imported when needed)."""
    from detect.build import rung_label

    return rung_label(config.model)


EXAMPLE_SCORE_THRESH = 0.4  # detections drawn in the example figure
EXAMPLE_MAX_DETECTIONS = 12
MAX_CURVE_POINTS = 200  # PR curves are thinned to this many points in metrics.json


def _thin(values: list[float], keep: list[int]) -> list[float]:
    return [round(float(values[i]), 5) for i in keep]


def curve_json(curve) -> dict | None:
    """A PRCurve as {"recall", "precision"} lists, at most MAX_CURVE_POINTS evenly spaced points."""
    if curve is None:
        return None
    n = len(curve.recall)
    if n <= MAX_CURVE_POINTS:
        keep = list(range(n))
    else:
        keep = sorted({round(i * (n - 1) / (MAX_CURVE_POINTS - 1)) for i in range(MAX_CURVE_POINTS)})
    return {"recall": _thin(list(curve.recall), keep), "precision": _thin(list(curve.precision), keep)}


def finite(value) -> float | None:
    return None if value is None or value != value else float(value)


def failed_row(name: str, config_path: Path, config, error: str) -> dict:
    """The metrics.json row of a variant that did not finish."""
    source, head = describe_rung(config)
    return {"name": name, "config": str(config_path), "status": "failed", "error": error,
            "rung": rung_name(config),
            "proposal_source": source, "region_classifier": head, "mAP": None, "per_class": {},
            "seconds_per_image": {"proposals": None, "network": None, "total": None}, "params": None, "flops": None,
            "train_seconds": None, "curves": {"pooled": None, "per_class": {}}, "examples": {}}


def example_detections(dets: dict, class_names: Sequence[str]) -> list[dict]:
    """The detections drawn in the report: score >= EXAMPLE_SCORE_THRESH, at most
    EXAMPLE_MAX_DETECTIONS, and always the top one (a weak variant still shows its best guess)."""
    order = dets["scores"].argsort(kind="stable")[::-1][:EXAMPLE_MAX_DETECTIONS]
    out = []
    for rank, k in enumerate(order):
        score = float(dets["scores"][k])
        if score < EXAMPLE_SCORE_THRESH and rank > 0:
            break
        out.append({"label": class_names[int(dets["labels"][k])], "score": round(score, 4),
                    "box": [round(float(v), 2) for v in dets["boxes"][k]]})
    return out


def measure_variant(model, config, dataset, example_ids: Sequence[str], protocol: str,
                    warmup: int, log: Log, memo: ProposalMemo | None = None) -> dict:
    """Evaluate and time ``model`` on every image of ``dataset``, one image at a time.

    Returns the measured part of a metrics row: mAP, per_class, curves,
    seconds_per_image (medians), params, flops (multiply-adds of the network on the first image;
    proposal methods outside the network count as time only) and the example images' detections.
    """
    import statistics

    from detect.inference import run_detector
    from detect.result_variants import analysis_fields, image_areas
    from eval.mean_ap import evaluate

    memo = memo or ProposalMemo()
    class_names = list(dataset.class_names)
    n = len(dataset)
    for i in range(min(warmup, n)):  # warm-up: allocator, caches, lazy initialisation
        image = dataset[i][0]
        props, secs = memo.get(config, i, image)
        run_detector(model, config, [image], proposals=props, proposal_seconds=secs)
    flops = _network_flops(model, config, dataset, memo)
    gts, dets, times, cpu = [], [], [], []
    for i in range(n):
        image, ann = dataset[i]
        props, secs = memo.get(config, i, image)
        tick = time.process_time()
        result, stage = run_detector(model, config, [image], proposals=props, proposal_seconds=secs)
        cpu.append(time.process_time() - tick + memo.cpu_seconds(config, i))
        dets.append(result[0])
        times.append(stage[0])
        gts.append({"boxes": ann.boxes, "labels": ann.labels, "difficult": ann.difficult, "image_id": ann.image_id})
        if (i + 1) % 25 == 0 or i + 1 == n:
            log(f"  evaluated {i + 1}/{n} images")
    result = evaluate(gts, dets, class_names, protocol, report_classes=class_names)
    prop = statistics.median(t.proposals for t in times)
    net = statistics.median(t.network for t in times)
    total = statistics.median(t.proposals + t.network for t in times)
    # wall/CPU per image: ~1 for one undisturbed thread; more means the process waited for a core
    ratio = statistics.median((t.proposals + t.network) / c for t, c in zip(times, cpu) if c > 0) if any(cpu) else None
    index = {image_id: k for k, image_id in enumerate(dataset.image_ids)}
    return {
        "mAP": finite(result.mAP),
        "per_class": {name: finite(result.per_class.get(name)) for name in class_names},
        "seconds_per_image": {"proposals": prop, "network": net, "total": total,
                              "cpu": statistics.median(cpu), "wall_per_cpu": ratio},
        "params": int(sum(p.numel() for p in model.parameters())),
        "flops": flops,
        "curves": {"pooled": curve_json(result.pooled) if len(result.pooled.recall) else None,
                   "per_class": {name: curve_json(result.curves.get(name)) for name in class_names}},
        "examples": {i: example_detections(dets[index[i]], class_names) for i in example_ids},
        **analysis_fields(gts, dets, class_names, image_areas(dataset), protocol),
    }


def _network_flops(model, config, dataset, memo: ProposalMemo) -> int:
    """Multiply-adds of ``model`` on the first image (convolutions and matrix products; see detect/backbones/measure.py)."""
    from detect.backbones.measure import count_flops
    from detect.inference import run_detector

    image = dataset[0][0]
    props, secs = memo.get(config, 0, image)
    return count_flops(lambda: run_detector(model, config, [image], proposals=props, proposal_seconds=secs))
