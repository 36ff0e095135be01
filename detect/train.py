"""The training engine every rung trains with: ``train(config, out_dir)``.

One loop for all rungs and all scales (CPU, one GPU, ``torchrun`` DDP):

    batches (detect.data.training.BatchPlan: a pure function of seed and iteration)
      -> model(images, targets, proposals) -> dict of losses -> sum
      -> backward (AMP GradScaler on CUDA) -> clip -> optimiser step -> lr schedule step
      -> RUN/log.jsonl line; RUN/checkpoint.pt every ``checkpoint_every``; validation every ``val_every``
    end: RUN/checkpoint.pt and RUN/model.pt (weights + config + class names)

Determinism: the batch plan, the flips and the RNG that the RPN/RoI samplers
draw from (re-seeded from (seed, iteration, rank) at every iteration) depend
on nothing else, so on the CPU a run killed and resumed with ``resume=True``
ends with the same weights and logs the same losses as an uninterrupted run.
Only rank 0 writes files.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from detect.build import build_detector, rung_label
from detect.config import Config, config_changes, config_from_tree, config_to_dict
from detect.data.object_crops import object_crops
from detect.data.training import BatchPlan, SkippedImage, TrainingSet, collate
from detect.data.voc import VOCDataset
from detect.engine import distributed
from detect.engine.checkpoint import load_safely, model_payload, save_atomic
from detect.engine.precision import training_precision
from detect.engine.runlog import RunLog
from detect.engine.schedule import build_optimizer, build_scheduler
from eval.errors import InputError
from eval.files import check_writable


@dataclass
class TrainResult:
    run_dir: Path
    model_path: Path | None  # None when the run stopped early (``stop_at``)
    checkpoint_path: Path
    iterations: int  # iterations completed in total (resumed runs count earlier ones)
    train_seconds: float  # wall seconds in the training loop, all sessions of the run
    final_losses: dict[str, float] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)  # "file: why" for dataset entries left out
    val_map: float | None = None  # last validation mAP, if any
    precision: str = "float32"  # the autocast training used (detect/engine/precision.py)


def _load_data(config: Config, say: Callable[[str], None], progress: bool, dist):
    # Cheap up-front check (header: format, size, EXIF orientation); a file that still fails to decode
    # mid-run is skipped by TrainingSet and recorded in log.jsonl (see _Loop.step).
    voc = VOCDataset(config.data.root, config.data.train_split, class_names=config.classes, on_error="skip",
                     check_images=config.data.check_images, max_pixels=config.data.max_image_pixels)
    skipped = [str(p) for p in voc.problems]
    if skipped:
        shown = "; ".join(skipped[:3]) + (f"; and {len(skipped) - 3} more" if len(skipped) > 3 else "")
        say(f"skipped {len(skipped)} image{'s' if len(skipped) != 1 else ''}: {shown}")
    if len(voc) == 0:
        raise InputError(Path(config.data.root) / "ImageSets" / "Main" / f"{config.data.train_split}.txt",
                         "no usable training images")
    from detect.proposal_route import split_proposals

    found = split_proposals(config, voc, dist=dist, progress=progress)
    return voc, skipped, (found.boxes if found is not None else None)


def _validate(model, config: Config, dist, progress: bool) -> float:
    """mAP of the model on ``data.val_split`` (the calculator of ``detladder eval``)."""
    from detect.model_eval import detect_split, evaluate_detections

    voc = VOCDataset(config.data.root, config.data.val_split, class_names=config.classes, on_error="skip",
                     max_pixels=config.data.max_image_pixels)
    was_training = model.training
    model.eval()
    try:
        dets, _ = detect_split(model, config, voc, dist=dist, progress=progress)
    finally:
        model.train(was_training)
    return evaluate_detections(voc, dets, config.test.protocol).mAP


# Keys a resumed run may change without changing what it computes (where files go, how often to log).
RESUME_FREE_KEYS = ("data.workers", "train.log_every", "train.checkpoint_every", "train.val_every")


def _check_resume_config(ckpt_path: Path, stored: dict | None, config: Config, allow_change: bool,
                         say: Callable[[str], None]) -> None:
    """Refuse to resume under a config that differs from the run's own (listing the keys), unless allowed."""
    if not isinstance(stored, dict):
        return
    changes = config_changes(stored, config, ignore=RESUME_FREE_KEYS)
    if not changes:
        return
    shown = "; ".join(changes[:4]) + (f"; and {len(changes) - 4} more" if len(changes) > 4 else "")
    made = _rung_of(stored)
    rung = f"this run was made with a {made} config, not this {rung_label(config.model)} one; " \
        if made not in (None, rung_label(config.model)) else ""
    if not allow_change:
        raise InputError(ckpt_path, f"{rung}the config differs from the run's in {len(changes)} key(s): {shown}. "
                                    "Resume with the config the run was made with, or pass --allow-config-change")
    say(f"resuming with a changed config ({len(changes)} key(s)): {shown}")


def _rung_of(stored: dict) -> str | None:
    try:
        return rung_label(config_from_tree(stored).model)
    except InputError:
        return None


def _mismatch(expected: dict, found: dict, exc: Exception) -> str:
    """One line on how a checkpoint's state dict differs from the model's (torch's message spans many)."""
    if not isinstance(found, dict):
        return "the checkpoint holds no state dict"
    missing = [k for k in expected if k not in found]
    extra = [k for k in found if k not in expected]
    shapes = [k for k in expected if k in found and hasattr(found[k], "shape") and found[k].shape != expected[k].shape]
    parts = [f"{len(keys)} {what} (first: {keys[0]})" for keys, what in
             ((missing, "missing"), (extra, "unexpected"), (shapes, "of another shape")) if keys]
    return ", ".join(parts) if parts else " ".join(str(exc).split())[:200]


def _read_checkpoint(run: Path, resume: bool, config: Config, allow_config_change: bool,
                     say: Callable[[str], None]) -> dict | None:
    """RUN/checkpoint.pt when resuming (None otherwise), checked before any work starts.

    Without ``resume`` an existing checkpoint is refused (it would be overwritten); with it, a
    checkpoint of another config is refused, unless ``allow_config_change``.
    """
    ckpt_path = run / "checkpoint.pt"
    if not resume:
        if ckpt_path.exists():
            raise InputError(run, "already holds a training run (checkpoint.pt); pass --resume or choose another --out")
        return None
    if not ckpt_path.exists():
        raise InputError(ckpt_path, "nothing to resume: no checkpoint in this run directory")
    ckpt = load_safely(ckpt_path)
    if not isinstance(ckpt, dict) or not {"model", "optimizer", "scheduler", "iteration"} <= set(ckpt):
        raise InputError(ckpt_path, "not a training checkpoint of detladder (model, optimizer, scheduler, iteration)")
    _check_resume_config(ckpt_path, ckpt.get("config"), config, allow_config_change, say)
    return ckpt


def _start_state(run: Path, ckpt: dict | None, model, optimizer, scheduler, scaler, config: Config,
                 say: Callable[[str], None]) -> tuple[int, float]:
    """Restore a checkpoint from :func:`_read_checkpoint`: (first iteration to run, seconds so far).

    Weights that do not fit this config's model (another rung's run, resumed with
    ``allow_config_change``) raise ``InputError``; the user is told where the run continues from.
    """
    if ckpt is None:
        return 0, 0.0
    ckpt_path = run / "checkpoint.pt"
    try:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
    except (RuntimeError, ValueError, KeyError) as exc:
        made = _rung_of(ckpt["config"]) if isinstance(ckpt.get("config"), dict) else None
        made = f"the run was made with a {made} config" if made else "the run's config is unknown"
        raise InputError(ckpt_path, f"its weights do not fit the {rung_label(config.model)} model this config "
                                    f"describes ({made}): {_mismatch(model.state_dict(), ckpt['model'], exc)}"
                         ) from None
    scheduler.load_state_dict(ckpt["scheduler"])
    if ckpt.get("scaler"):
        scaler.load_state_dict(ckpt["scaler"])
    if "torch" in ckpt.get("rng", {}):
        torch.set_rng_state(ckpt["rng"]["torch"])
    say(f"resumed from iteration {int(ckpt['iteration'])} of {config.train.iterations} ({ckpt_path})")
    return int(ckpt["iteration"]), float(ckpt.get("train_seconds", 0.0))


def train(config: Config, out_dir, *, resume: bool = False, data_root=None, device: str = "auto",
          progress: bool = False, say: Callable[[str], None] | None = None, stop_at: int | None = None,
          threads: int | None = None, allow_config_change: bool = False) -> TrainResult:
    """Train ``config``'s rung into ``out_dir``; see the module docstring for the files written.

    ``data_root`` overrides ``config.data.root``. ``say`` receives one-line notes
    for the user (skipped images). ``stop_at`` ends the run after that iteration
    without writing model.pt, as a crash would (used to test resuming). ``threads``
    sets torch's CPU thread count for the run (None: torch's default); on shared
    cores fewer threads can be several times faster (detect/engine/threads.py). Resuming under a config
    that differs from the run's raises ``InputError`` listing the keys, unless ``allow_config_change``.
    """
    from detect.engine.threads import torch_threads

    with torch_threads(threads):
        return _train(config, out_dir, resume=resume, data_root=data_root, device=device, progress=progress,
                      say=say, stop_at=stop_at, allow_config_change=allow_config_change)


def _train(config: Config, out_dir, *, resume: bool, data_root, device: str, progress: bool,
           say: Callable[[str], None] | None, stop_at: int | None, allow_config_change: bool) -> TrainResult:
    config = copy.deepcopy(config)
    if data_root is not None:
        config.data.root = str(data_root)
    say = say or (lambda message: None)
    run = check_writable(out_dir, directory=True)  # before the work, not when the first checkpoint is due
    dev = distributed.resolve_device(device)
    dist = distributed.setup(dev)
    main_say = say if dist.is_main else (lambda message: None)
    ckpt = _read_checkpoint(run, resume, config, allow_config_change, main_say)
    voc, skipped, props = _load_data(config, say if dist.is_main else (lambda m: None), progress and dist.is_main, dist)
    class_names = list(voc.class_names)
    model = build_detector(config, len(class_names)).to(dev).train()
    if dev.type == "cpu" and config.train.channels_last:  # oneDNN convolutions run faster on NHWC (docs/performance.md)
        model = model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(model, config.train)
    scheduler = build_scheduler(optimizer, config.train)
    precision = training_precision(config.train, dev)
    scaler = torch.amp.GradScaler("cuda", enabled=precision.needs_scaler)
    start, seconds = _start_state(run, ckpt, model, optimizer, scheduler, scaler, config, main_say)
    distributed.barrier(dist)
    log = RunLog(run / "log.jsonl", resume_from=start, enabled=dist.is_main)
    if start == 0 and skipped:
        log.write({"event": "skipped", "iteration": 0, "count": len(skipped), "files": skipped})
    net = model
    if dist.enabled:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None)
    plan = BatchPlan(len(voc), config.train.batch_size, config.seed, start, config.train.iterations,
                     flip=config.data.flip, rank=dist.rank, world_size=dist.world_size)
    loader = torch.utils.data.DataLoader(TrainingSet(voc, props, crops=object_crops(config)), batch_sampler=plan,
                                         collate_fn=collate, num_workers=config.data.workers)
    loop = _Loop(config, net, model, optimizer, scheduler, scaler, precision, dev, dist, run, log, class_names)
    loop.say = say if dist.is_main else (lambda message: None)
    last, val_map = loop.run(loader, start, seconds, progress and dist.is_main, stop_at)
    skipped = skipped + [s for s in loop.skipped_midrun if s not in skipped]
    log.close()
    finished = loop.iteration >= config.train.iterations
    model_path = None
    if finished and dist.is_main and loop.iteration > start:
        _fit_stage(model, TrainingSet(voc, props), dev)  # e.g. R-CNN's SVMs (issue 6)
    if finished and dist.is_main:
        model_path = save_atomic(model_payload(model.state_dict(), config_to_dict(config), class_names,
                                               model.rung), run / "model.pt")
    distributed.barrier(dist)
    return TrainResult(run, model_path if finished else None, run / "checkpoint.pt", loop.iteration,
                       loop.seconds, last, skipped, val_map, precision.name)


def _fit_stage(model, images: TrainingSet, dev) -> None:
    """Fit the region head's stage after the SGD iterations (R-CNN's SVMs), if it has one.

    The stage sees the regions through the detector's own forward: eval mode, one unflipped
    training image at a time with its targets and proposals, inside ``stage.collect()``.
    """
    stage = getattr(model.region_head, "fit_stage", None)
    if stage is None:
        return
    was_training = model.training
    model.eval()
    with torch.no_grad(), stage.collect():
        for i in range(min(len(images), stage.num_images)):
            sample = images[(i, False)]
            if isinstance(sample, SkippedImage):
                continue
            image, target, props = sample
            model([image.to(dev)], [{k: v.to(dev) for k, v in target.items()}],
                  [props.to(dev)] if props is not None else None)
    stage.fit()
    model.train(was_training)


class _Loop:
    """The iteration loop's state (kept out of ``train`` so each part stays readable)."""

    def __init__(self, config, net, model, optimizer, scheduler, scaler, precision, dev, dist, run, log, class_names):
        self.config, self.net, self.model = config, net, model
        self.optimizer, self.scheduler, self.scaler, self.precision = optimizer, scheduler, scaler, precision
        self.dev, self.dist, self.run_dir, self.log, self.class_names = dev, dist, run, log, class_names
        self.iteration, self.seconds = 0, 0.0
        self.skipped_midrun: list[str] = []  # "file: why" of images that failed to decode during training
        self.say: Callable[[str], None] = lambda message: None

    def run(self, loader, start: int, seconds: float, progress: bool, stop_at: int | None):
        cfg = self.config.train
        self.iteration, self.seconds = start, seconds
        last: dict[str, float] = {}
        val_map = None
        bar = _bar(progress, start, cfg.iterations)
        for it, batch in zip(range(start, cfg.iterations), loader):
            tick = time.perf_counter()
            last = self.step(it, batch)
            elapsed = time.perf_counter() - tick
            self.seconds += elapsed
            self.iteration = it + 1
            n_images = len(batch[0]) * self.dist.world_size
            self.log.write({"iteration": it + 1, **last, "images_per_s": n_images / max(elapsed, 1e-9),
                            "seconds": elapsed})
            if bar is not None:
                bar.update(bar.task_ids[0], completed=it + 1, description=f"loss {last.get('loss', float('nan')):.3f}")
            if cfg.val_every and (it + 1) % cfg.val_every == 0:
                val_map = _validate(self.model, self.config, self.dist, False)
                self.log.write({"event": "validation", "iteration": it + 1, "mAP": val_map,
                                "protocol": self.config.test.protocol, "split": self.config.data.val_split})
            if (it + 1) % cfg.checkpoint_every == 0 or it + 1 == cfg.iterations:
                self.save_checkpoint()
            if stop_at is not None and it + 1 >= stop_at:
                break
        if bar is not None:
            bar.stop()
        return last, val_map

    def _note_skipped(self, it: int, skipped: list[str]) -> None:
        """Record images that failed to decode in this batch: log.jsonl always, the user once per file."""
        self.log.write({"event": "skipped", "iteration": it + 1, "count": len(skipped), "files": skipped})
        for reason in skipped:
            if reason not in self.skipped_midrun:
                self.skipped_midrun.append(reason)
                self.say(f"skipped an image that could not be decoded: {reason}")

    def step(self, it: int, batch) -> dict[str, float]:
        images, targets, props, skipped = batch
        if skipped:
            self._note_skipped(it, skipped)
        if not images:  # every image of this batch failed: no update, but the schedule keeps its pace
            if self.dist.enabled:
                raise RuntimeError(f"every image of rank {self.dist.rank}'s batch at iteration {it + 1} "
                                   f"failed to decode: {skipped[0]}")
            self.scheduler.step()
            return {"lr": self.optimizer.param_groups[0]["lr"], "skipped_batch": 1.0}
        # The RPN/RoI samplers draw from the global RNG: seed it from (seed, iteration, rank).
        torch.manual_seed((self.config.seed * 1_000_003 + it) * 64 + self.dist.rank)
        images = [im.to(self.dev, non_blocking=True) for im in images]
        targets = [{k: v.to(self.dev) for k, v in t.items()} for t in targets]
        props = [p.to(self.dev) for p in props] if props is not None else None
        lr = self.optimizer.param_groups[0]["lr"]
        with self.precision.autocast():
            losses = self.net(images, targets, props)
        loss = sum(losses.values())
        if not torch.isfinite(loss):
            raise RuntimeError(f"training diverged: loss is {loss.item()} at iteration {it + 1} "
                               f"({', '.join(f'{k}={v.item():.4g}' for k, v in losses.items())}); lower train.lr")
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.config.train.grad_clip:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.train.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        values = torch.stack([loss.detach(), *[v.detach() for v in losses.values()]]).float()
        if self.dist.enabled:  # log the mean over ranks
            torch.distributed.all_reduce(values)
            values /= self.dist.world_size
        out = dict(zip(["loss", *losses], values.tolist()))
        out["lr"] = lr
        return out

    def save_checkpoint(self) -> None:
        if not self.dist.is_main:
            return
        save_atomic({
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict() if self.precision.needs_scaler else {},
            "iteration": self.iteration, "train_seconds": self.seconds, "config": config_to_dict(self.config),
            "class_names": self.class_names, "rng": {"torch": torch.get_rng_state()},
        }, self.run_dir / "checkpoint.pt")


def _bar(enabled: bool, start: int, total: int):
    if not enabled:
        return None
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   console=Console(stderr=True), transient=True)
    bar.start()
    bar.add_task("training", total=total, completed=start)
    return bar


__all__ = ["train", "TrainResult"]
