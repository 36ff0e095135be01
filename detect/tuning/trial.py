"""One trial of ``detladder tune``: a short ``detect.train.train`` run, stopped early if it explodes, then scored.

The run goes in chunks of ``train.checkpoint_every`` iterations (``stop_at``); after
each chunk the losses in its log.jsonl go through the check's stop rule
(:func:`detect.check.verdict.explosion_index`: past ``check.stop_factor`` x the
first loss, or NaN). A killed trial resumes from its last checkpoint, which the
engine makes exact on the CPU. A finished trial is scored by the validation mAP
of the shared calculator on ``data.val_split``; its result goes to
``TRIAL/result.json`` (atomically), which is what makes it "done".
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from pathlib import Path

from detect.check.verdict import explosion_index

CHUNKS = 5  # stop-rule checks per trial


@contextlib.contextmanager
def alone():
    """Hide torchrun's WORLD_SIZE: under ``tune`` every rank trains its own trials, not one model together."""
    saved = os.environ.get("WORLD_SIZE")
    os.environ["WORLD_SIZE"] = "1"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("WORLD_SIZE", None)
        else:
            os.environ["WORLD_SIZE"] = saved


def trial_overrides(values: dict, iterations: int) -> list[str]:
    """``--set`` strings for a trial's values, plus the chunking (checkpoint every chunk)."""
    chunk = max(1, math.ceil(iterations / CHUNKS))
    return [f"{k}={v!r}" for k, v in values.items()] + [f"train.checkpoint_every={chunk}"]


def losses_in(run: Path) -> list[float]:
    """The total loss of every logged iteration of a run (NaN where the log says so)."""
    from detect.engine.runlog import read_log

    log = run / "log.jsonl"
    if not log.is_file():
        return []
    records = [r for r in read_log(log) if "loss" in r and "event" not in r]
    return [float(r["loss"]) if r["loss"] is not None else math.nan for r in records]


def validation_map(run: Path, config, device: str) -> float:
    """mAP of the run's model.pt on ``config.data.val_split``."""
    from detect.data.voc import VOCDataset
    from detect.inference import load_detector
    from detect.model_eval import detect_split, evaluate_detections

    model, cfg, names = load_detector(run / "model.pt", config, device)
    voc = VOCDataset(cfg.data.root, cfg.data.val_split, class_names=names, on_error="skip",
                     max_pixels=cfg.data.max_image_pixels)
    dets, _ = detect_split(model, cfg, voc)
    return evaluate_detections(voc, dets, cfg.test.protocol).mAP


def run_trial(config, run: Path, *, stop_factor: float, deadline: float | None, device: str = "auto") -> dict | None:
    """Train and score one trial's ``config`` in ``run``; None when the budget ran out first (resumable).

    ``device`` "auto": this rank's GPU when there is one (``LOCAL_RANK``), else the CPU.
    """
    from detect.engine.distributed import resolve_device
    from detect.train import train

    device = resolve_device(device)

    iterations = config.train.iterations
    chunk = config.train.checkpoint_every
    tick = time.perf_counter()
    status, mean_ap, stopped_at = "finished", None, None
    with alone():
        while True:
            done = _done_iterations(run)
            if done >= iterations:
                break
            if deadline is not None and time.monotonic() > deadline:
                return None
            try:
                train(config, run, resume=done > 0, device=str(device), stop_at=min(done + chunk, iterations))
            except RuntimeError as exc:
                if "diverged" not in str(exc):
                    raise
                status, stopped_at = "stopped early: the loss turned NaN", len(losses_in(run)) + 1
                break
            stop = explosion_index(losses_in(run), stop_factor)
            if stop is not None:
                status, stopped_at = f"stopped early: the loss passed {stop_factor:g}x its start", stop + 1
                break
        if status == "finished":
            mean_ap = validation_map(run, config, device)
    return {"status": status, "mAP": mean_ap, "stopped_at": stopped_at, "seconds": time.perf_counter() - tick,
            "losses": losses_in(run)}


def _done_iterations(run: Path) -> int:
    """Iterations saved in the run's checkpoint (0 without one)."""
    ckpt = run / "checkpoint.pt"
    if not ckpt.is_file():
        return 0
    from detect.engine.checkpoint import load_safely

    return int(load_safely(ckpt)["iteration"])


def read_result(run: Path) -> dict | None:
    path = run / "result.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
