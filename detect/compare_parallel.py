"""Training a comparison's variants several at a time, one process each (``compare --jobs N``).

On a small CPU one training process does not use its cores well: several of the ladder's
operators run on one thread (torchvision's ``roi_pool``, ``nms``; batch loading), so a
2-thread step of Fast R-CNN is only ~1.1x faster than a 1-thread one (docs/performance.md).
Two processes with one thread each keep both cores busy. Each variant still trains exactly
as ``detladder train`` would train it (the same engine, the same batches); only the number of
torch threads differs, which changes a float sum's order, not the recipe.

The jobs run before any variant is measured, so the per-image timings that follow see an
otherwise idle machine. Selective Search proposals (cached per image) are computed first, once,
so that two variants reading the same cache do not compute it twice. A variant whose training
fails here is left to the sequential pass, which trains it again and reports the failure
as its row.
"""

from __future__ import annotations

import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Callable

Log = Callable[[str], None]


def _say(name: str) -> Log:
    return lambda message: print(f"[{name}] {message.strip()}", file=sys.stderr, flush=True)


def _train_one(name: str, config, run_dir: Path, digest: str, data_root: Path, force: bool, device: str,
               threads: int) -> float | None:
    """Worker: train one variant with ``threads`` torch threads; returns its training seconds."""
    from detect.compare import _ensure_trained
    from detect.engine.threads import torch_threads

    with torch_threads(threads):
        return _ensure_trained(config, run_dir, digest, data_root, force, device, _say(name))


def _cache_proposals(configs: dict, data_root: Path, log: Log) -> None:
    """Fill the proposal cache of every precomputed-proposal config's training split, once per method."""
    from detect.data.voc import VOCDataset
    from detect.proposal_route import split_proposals

    done = set()
    for config in configs.values():
        if config.model.proposals != "precomputed":
            continue
        key = (config.model.precomputed.method, repr(config.model.precomputed.params), config.data.train_split)
        if key in done:
            continue
        done.add(key)
        log(f"proposals for the training split ({config.model.precomputed.method}), shared by the variants")
        voc = VOCDataset(data_root, config.data.train_split, class_names=config.classes)
        split_proposals(config, voc)


def train_in_parallel(todo: dict, out_dir: Path, data_root: Path, *, force: bool, device: str, jobs: int,
                      threads: int, log: Log) -> None:
    """Train ``todo`` ({name: config}) ``jobs`` at a time, longest schedule first, ``threads`` threads each."""
    from detect.compare import config_hash

    _cache_proposals(todo, data_root, log)
    order = sorted(todo, key=lambda name: -todo[name].train.iterations)
    log(f"training {len(order)} variants {jobs} at a time, {threads} torch thread(s) each")
    context = multiprocessing.get_context("spawn")  # no fork of a process whose torch threads already run
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        futures = {pool.submit(_train_one, name, todo[name], out_dir / name, config_hash(todo[name]), data_root,
                               force, device, threads): name for name in order}
        for future in as_completed(futures):
            name = futures[future]
            try:
                seconds = future.result()
                log(f"  {name}: trained" + (f" in {seconds:.1f} s" if seconds else ""))
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception as exc:  # noqa: BLE001 - the sequential pass retries it and reports the failure
                log(f"  {name}: training failed in its own process ({exc.__class__.__name__}); retried below")
