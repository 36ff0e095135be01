"""Check 2: the model can overfit a few images (the CS231n sanity check before training on everything).

Train on ``check.overfit_images`` images, all in every batch, never flipped,
without weight decay, at ``check.overfit_lr`` (default ``train.lr``) with the
engine's warm-up and cosine schedule shortened to ``check.overfit_iterations``.
Passes when the loss fell by ``check.overfit_loss_drop`` x and the mAP of the
shared calculator on those same images reached ``check.overfit_min_map``.
A model that cannot do this has a bug (or a learning rate far off), whatever
its numbers on the full data would be.
"""

from __future__ import annotations

import copy
import math
import time

from detect.check.steps import step
from detect.check.verdict import FAIL, PASS, WARN, Verdict, fmt, smoothed


def _optimizer(model, config, lr: float, iterations: int):
    from detect.engine.schedule import build_optimizer, build_scheduler

    cfg = copy.deepcopy(config.train)
    cfg.lr, cfg.weight_decay, cfg.iterations = lr, 0.0, iterations
    cfg.warmup_iterations = min(cfg.warmup_iterations, iterations // 10)
    optimizer = build_optimizer(model, cfg)
    return optimizer, build_scheduler(optimizer, cfg)


def _map_on(model, config, samples) -> float:
    """mAP of ``model`` on ``samples``' images with the calculator every command uses."""
    from detect.model_eval import detect_split, evaluate_detections

    model.eval()
    try:
        dets, _ = detect_split(model, config, samples.voc)
    finally:
        model.train()
    return evaluate_detections(samples.voc, dets, config.test.protocol).mAP


def boxes_per_image(model) -> int | None:
    """How many objects per image the model can find at most: 1 for the regression rung's one box, else None.

    Its overfit images are then images with one object, else the mAP ceiling would be the
    share of objects that are alone in their image, not 1.
    """
    from detect.detectors.regression import GlobalPoolHead

    return 1 if isinstance(model.region_head, GlobalPoolHead) else None


def check_overfit(model, config, samples, cap: int | None = None) -> Verdict:
    """Train ``model`` (in place) on ``samples`` and score it on them; see the module docstring."""
    tick = time.perf_counter()
    chk = config.check
    lr = chk.overfit_lr if chk.overfit_lr is not None else config.train.lr
    optimizer, scheduler = _optimizer(model, config, lr, chk.overfit_iterations)
    batch = samples.pick(list(range(len(samples.images))))
    losses: list[float] = []
    error = ""
    for it in range(chk.overfit_iterations):
        out = step(model, optimizer, batch, seed=config.seed, it=it, grad_clip=config.train.grad_clip)
        losses.append(out["loss"])
        error = out.get("error", "")
        if not math.isfinite(out["loss"]):
            break
        scheduler.step()
    curve = {"loss": {"x": list(range(1, len(losses) + 1)), "y": losses}}
    n = len(samples.images)
    expected = f"loss / {fmt(chk.overfit_loss_drop)} or less, mAP >= {chk.overfit_min_map:g} on the {n} images"
    if not math.isfinite(losses[-1]):
        hint = f"the loss turned NaN at iteration {len(losses)} at lr {fmt(lr)}: lower train.lr (see the sweep)"
        return Verdict("overfit", FAIL, f"loss {fmt(losses[0])} -> NaN", expected, hint,
                       [error] if error else [], curve, time.perf_counter() - tick)
    # The end value is smoothed: with the samplers' randomness one batch's loss is noisy.
    start, end = losses[0], smoothed(losses)[-1]
    drop = start / end if end > 0 else math.inf
    mean_ap = _map_on(model, config, samples)
    ok_loss, ok_map = drop >= chk.overfit_loss_drop, mean_ap >= chk.overfit_min_map
    # The mAP is the goal; a loss that fell less than asked while the mAP got there is only a warning.
    status = PASS if ok_loss and ok_map else WARN if ok_map else FAIL
    hint = ("the loss hardly falls: check the learning rate (the sweep suggests one) and the targets"
            if not ok_loss else "the loss falls but detections stay poor: check.overfit_iterations may be too "
            "few for this model, or the boxes/labels reach the model wrongly")
    measured = f"loss {fmt(start)} -> {fmt(end)} ({drop:.1f}x lower), mAP {mean_ap:.4f} in {len(losses)} iterations"
    details = [f"lr {fmt(lr)}, no weight decay, no flips, {n} images per batch"]
    if cap is not None:
        details.append(f"the model finds at most {cap} object per image: the images have 1 to {cap} objects")
    return Verdict("overfit", status, measured, expected, hint, details, curve, time.perf_counter() - tick)
