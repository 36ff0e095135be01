"""``compare``: train (or load), evaluate and time several detector configs on the same data.

For each config, in the order given::

    OUT/<name>/            the run (detect.train: checkpoint.pt, model.pt, log.jsonl)
    OUT/<name>/compare.json  this variant's finished row + the hash of its resolved config
    OUT/examples/          the few test images every variant's detections are drawn on
    OUT/metrics.json       every row (eval.report_schema), written atomically after each variant
    OUT/report.html, report.md, figures/   rendered from metrics.json (eval.report)

Resuming: a variant whose ``compare.json`` records the same config hash (the
resolved config tree, so an edit of a ``_base_`` file counts too), dataset and
split is taken as finished and not recomputed; a changed config is re-trained.
A variant killed mid-training resumes from its checkpoint. A variant that fails
gets a row ``status: failed`` with the reason; the others still run.

Every variant is evaluated on the whole split with the shared calculator
(:func:`eval.mean_ap.evaluate`) and timed per image on those same images, one
image at a time after a warm-up; seconds/image are medians, split into
proposals and network as ``detect.inference.run_detector`` reports them.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import sys
import traceback
from pathlib import Path
from typing import Callable, Sequence

from detect.compare_context import held_equal, load_average, machine_info, write_examples
from detect.compare_proposals import ProposalMemo, proposal_recall_row
from detect.compare_rows import describe_rung, failed_row, finite, measure_variant, rung_name
from eval.errors import InputError
from eval.files import atomic_write_json, check_writable
from eval.report_schema import SCHEMA_VERSION, validate_metrics

Log = Callable[[str], None]

def _stderr(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def config_hash(config) -> str:
    """SHA-256 of the resolved config (after ``_base_`` merging and overrides)."""
    from detect.config import config_to_dict

    text = json.dumps(config_to_dict(config), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _variant_names(config_paths: Sequence[Path]) -> list[str]:
    names = [Path(p).stem for p in config_paths]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise InputError(config_paths[i], f"another config is also named {name!r}; variant names come "
                                              "from file names and must differ")
    return names


def _one_line(exc: BaseException) -> str:
    text = " ".join(f"{exc.__class__.__name__}: {exc}".split())
    return text if len(text) <= 400 else text[:397] + "..."


# --------------------------------------------------------------------------- one variant


def _ensure_trained(config, run_dir: Path, digest: str, data_root: Path, force: bool, device: str,
                    log: Log, progress: bool = False) -> float | None:
    """Make sure run_dir holds a model.pt of this config; returns its training seconds if known.

    A model compare trained from this very config is kept; a model.pt found
    there without compare's record (trained by hand) is used unless ``force``;
    a run of an edited config is trained again; an interrupted training resumes.
    """
    from detect.train import train

    state_path = run_dir / "compare-train.json"
    state = _read_json(state_path)
    model_path = run_dir / "model.pt"
    same = state.get("config_hash") == digest
    if model_path.is_file() and same and state.get("phase") == "trained":
        return state.get("train_seconds")
    if model_path.is_file() and not state and not force:
        log(f"  using the existing run in {run_dir} (pass --train to retrain it)")
        return None
    resume = same and state.get("phase") == "training" and (run_dir / "checkpoint.pt").is_file()
    if not resume:  # a stale run (another config, or forced): start clean
        for stale in ("checkpoint.pt", "model.pt", "log.jsonl"):
            (run_dir / stale).unlink(missing_ok=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(state_path, {"config_hash": digest, "phase": "training"})
    log(f"  training ({'resuming' if resume else 'from scratch'}) -> {run_dir}")
    result = train(config, run_dir, resume=resume, data_root=data_root, device=device, progress=progress,
                   say=lambda message: log(f"  {message}"))
    seconds = finite(getattr(result, "train_seconds", None))
    atomic_write_json(state_path, {"config_hash": digest, "phase": "trained", "train_seconds": seconds})
    return seconds


def _training_record(run_dir: Path) -> dict | None:
    """The run's loss curve and flattened-or-not verdict (eval.training_curves) from its log.jsonl."""
    from detect.engine.runlog import read_log
    from eval.training_curves import training_curve

    log_path = run_dir / "log.jsonl"
    try:
        return training_curve(read_log(log_path)) if log_path.is_file() else None
    except (OSError, ValueError):  # a hand-made run with an unreadable log: no curve, not a failure
        return None


def _kept_row(run_dir: Path, config, fingerprint: dict) -> bool:
    """True if an earlier compare measured this variant with the same config on the same images."""
    record = _read_json(run_dir / "compare.json")
    return record.get("config_hash") == config_hash(config) and record.get("fingerprint") == fingerprint


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def run_variant(name: str, config_path: Path, config, out_dir: Path, data_root: Path, dataset,
                example_ids: Sequence[str], protocol: str, *, force_train: bool, device: str,
                warmup: int, log: Log, memo: ProposalMemo | None = None, progress: bool = False,
                threads: int | None = None) -> dict:
    """Train or load one variant, then measure it; returns its (status ok) metrics row.

    Training runs with ``threads`` torch threads (None: torch's default); timing always runs with a fixed
    count, ``threads`` or 1 (see :mod:`detect.engine.threads`).
    """
    from detect.engine.threads import torch_threads
    from detect.inference import load_detector

    run_dir = out_dir / name
    digest = config_hash(config)
    memo = memo or ProposalMemo()
    with torch_threads(threads):
        seconds = _ensure_trained(config, run_dir, digest, data_root, force_train, device, log, progress)
    model, model_config, _ = load_detector(run_dir / "model.pt", device=device)
    model.eval()
    with torch_threads(threads or 1):
        measured = measure_variant(model, model_config, dataset, example_ids, protocol, warmup, log, memo)
        measured["proposal_recall"] = proposal_recall_row(model, model_config, dataset, memo, name)
    source, head = describe_rung(model_config)  # what ran (a hand-trained run may differ from the file)
    measured["training"] = _training_record(run_dir)
    return {"name": name, "config": str(config_path), "status": "ok", "error": None,
            "rung": rung_name(model_config),
            "proposal_source": source, "region_classifier": head, **measured, "train_seconds": seconds}


# --------------------------------------------------------------------------- the whole comparison


def _pick_device(device: str | None) -> str:
    """The device as a string (default: CUDA when present); one this machine lacks is an ``InputError``."""
    from detect.engine.distributed import resolve_device

    return str(resolve_device(device or "auto"))


def compare(
    data_root: str | os.PathLike,
    config_paths: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    *,
    train: bool = False,
    split: str = "test",
    protocol: str | None = None,
    overrides: Sequence[str] = (),
    device: str | None = None,
    warmup: int = 2,
    examples: int = 4,
    log: Log | None = _stderr,
    progress: bool = False,
    threads: int | None = None,
    schedule_scale: float = 1.0,
    results: Sequence[tuple[str, str | os.PathLike]] = (),
    jobs: int = 1,
) -> dict:
    """Compare detector configs on one dataset; writes OUT/metrics.json and the report; returns the metrics.

    ``protocol`` defaults to the first config's ``test.protocol``. ``overrides``
    (``key=value``) apply to every config. ``warmup`` images run untimed before
    each variant's timed pass; ``examples`` test images are drawn in the report.
    ``device`` defaults to CUDA when present; ``progress`` shows training progress
    bars (stderr). ``threads``: torch threads for training (None: torch's default) and
    for timing (None: one, so that per-image latencies hold on shared cores); the report
    warns when the machine was busy while timing. ``schedule_scale`` multiplies every
    config's training iterations (``demo --quick``). ``results``: (name, path) of result files from
    any detector, evaluated as more rows (``detect.result_variants``). ``jobs`` > 1 trains that many variants
    at once on the CPU, each in its own process with ``threads`` (default: cores / jobs) torch threads,
    before any is measured (detect/compare_parallel.py). Raises ``InputError`` for a missing dataset or a bad config
    (before any work starts); a variant that fails while training or measuring
    becomes a ``failed`` row instead.
    """
    from detect.config import load_config
    from detect.data.voc import VOCDataset
    from eval.report import render_metrics

    log = log or (lambda message: None)
    data_root, out_dir = Path(data_root), Path(out_dir)
    config_paths = [Path(p) for p in config_paths]
    if not config_paths and not results:
        raise InputError(None, "compare needs at least one config or --results NAME=PATH")
    names = _variant_names(config_paths)
    for k, (result_name, result_path) in enumerate(results):
        if result_name in names or result_name in [r[0] for r in results[:k]]:
            raise InputError(result_path, f"another variant is also named {result_name!r}")
    configs = {name: load_config(path, list(overrides)) for name, path in zip(names, config_paths)}
    for config in configs.values():  # set directly: a --set value would be parsed as YAML
        config.data.root = str(data_root)
        if schedule_scale != 1.0:
            _scale_schedule(config.train, schedule_scale)
    protocol = protocol or (next(iter(configs.values())).test.protocol if configs else "voc12")
    check_writable(out_dir, directory=True)
    dataset = VOCDataset(data_root, split)
    if len(dataset) == 0:
        raise InputError(data_root, f"split {split!r} has no usable images")
    device = _pick_device(device)
    jobs = max(1, jobs) if device == "cpu" else 1
    train_threads = threads or (max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 else None)
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics = {
        "schema_version": SCHEMA_VERSION, "protocol": protocol,
        "created": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "dataset": {"root": str(data_root), "split": split, "num_images": len(dataset),
                    "class_names": list(dataset.class_names)},
        "settings": held_equal(configs, data_root, split, protocol, device),
        "machine": machine_info(device),
        "timing": {"images": len(dataset), "warmup": warmup, "batch size": 1, "statistic": "median",
                   "torch threads": threads or 1, "training torch threads": train_threads or _default_threads(),
                   "training jobs": jobs, "busy": None},
        "examples": write_examples(dataset, out_dir, examples),
        "variants": [],
    }
    example_ids = [e["image_id"] for e in metrics["examples"]]
    fingerprint = {"data_root": str(data_root.resolve()), "split": split, "protocol": protocol,
                   "images": len(dataset), "examples": example_ids}
    memo = ProposalMemo()
    kept = {name for name, config in configs.items() if _kept_row(out_dir / name, config, fingerprint)}
    if jobs > 1 and len(configs) - len(kept) > 1:
        from detect.compare_parallel import train_in_parallel

        train_in_parallel({n: c for n, c in configs.items() if n not in kept}, out_dir, data_root, force=train,
                          device=device, jobs=jobs, threads=train_threads, log=log)
        train = False  # trained just now: the pass below measures them (and retrains only a failed one)
    for k, (name, path) in enumerate(zip(names, config_paths)):
        config = configs[name]
        log(f"[{k + 1}/{len(names)}] {name} ({rung_name(config)})")
        row_path = out_dir / name / "compare.json"
        if name in kept:
            log("  finished earlier with the same config: kept")
            row = _read_json(row_path)["row"]
        else:
            try:
                row = run_variant(name, path, config, out_dir, data_root, dataset, example_ids, protocol,
                                  force_train=train, device=device, warmup=warmup, log=log, memo=memo,
                                  progress=progress and jobs == 1, threads=train_threads)
                atomic_write_json(row_path, {"config_hash": config_hash(config), "fingerprint": fingerprint,
                                             "row": row})
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception as exc:  # noqa: BLE001 - one variant failing must not sink the others
                (out_dir / name).mkdir(parents=True, exist_ok=True)
                (out_dir / name / "error.log").write_text(traceback.format_exc())
                log(f"  FAILED: {_one_line(exc)} (traceback in {out_dir / name / 'error.log'})")
                row = failed_row(name, path, config, _one_line(exc))
        metrics["variants"].append(row)
        metrics["machine"]["load average at end"] = load_average()
        metrics["timing"]["busy"] = _busy(metrics, threads or 1)
        validate_metrics(metrics)
        atomic_write_json(out_dir / "metrics.json", metrics)
    _add_result_variants(metrics, results, dataset, split, protocol, example_ids, out_dir, log)
    render_metrics(metrics, out_dir, out_dir, out_dir / "metrics.json")
    return metrics


def _add_result_variants(metrics: dict, results, dataset, split: str, protocol: str, example_ids, out_dir: Path,
                         log: Log) -> None:
    """Evaluate each (name, path) of result files as one more row; a bad one becomes a failed row."""
    from detect.result_variants import failed_results_row, image_areas, results_row

    areas = image_areas(dataset) if results else []
    for name, path in results:
        log(f"[results] {name} ({path})")
        try:
            row = results_row(name, Path(path), dataset, split, protocol, example_ids, areas)
        except InputError as exc:
            log(f"  FAILED: {exc}")
            row = failed_results_row(name, Path(path), str(exc))
        metrics["variants"].append(row)
        validate_metrics(metrics)
        atomic_write_json(out_dir / "metrics.json", metrics)


def _default_threads() -> int:
    import torch

    return torch.get_num_threads()


def _scale_schedule(train_config, scale: float) -> None:
    """Shorten (or lengthen) a training schedule: iterations, warm-up, steps and checkpoints together."""
    if scale <= 0:
        raise InputError(None, f"schedule scale must be positive, not {scale}")
    train_config.iterations = max(1, round(train_config.iterations * scale))
    train_config.warmup_iterations = min(round(train_config.warmup_iterations * scale), train_config.iterations)
    train_config.steps = [max(1, round(s * scale)) for s in train_config.steps]
    train_config.checkpoint_every = max(1, round(train_config.checkpoint_every * scale))


def _busy(metrics: dict, threads: int) -> str | None:
    """The report's busy-machine warning from the variants timed so far (None: timings look clean)."""
    from detect.engine.threads import busy_verdict

    ratios = [v["seconds_per_image"].get("wall_per_cpu") for v in metrics["variants"] if v["status"] == "ok"]
    ratios = [r for r in ratios if r is not None]
    return busy_verdict(max(ratios) if ratios else None, threads)


def print_summary(metrics: dict, out_dir: str | os.PathLike) -> int:
    """Print one line per variant and where the report is; returns 1 if any variant failed."""
    out_dir = Path(out_dir)
    failed = 0
    for v in metrics["variants"]:
        if v["status"] != "ok":
            failed += 1
            print(f"{v['name']:<16} FAILED  {v['error']}")
            continue
        m = "n/a" if v["mAP"] is None else f"{v['mAP']:.3f}"
        total = v["seconds_per_image"]["total"]
        t = "n/a" if total is None else f"{total * 1000:.1f} ms/image"
        print(f"{v['name']:<16} mAP {m}  {t}")
    print(f"report: {out_dir / 'report.html'}")
    print(f"markdown: {out_dir / 'report.md'}")
    print(f"metrics: {out_dir / 'metrics.json'}")
    return 1 if failed else 0
