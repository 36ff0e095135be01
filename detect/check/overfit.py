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


def fixed_proposals(model, samples, i: int):
    """Image ``i``'s boxes from a proposal source that does not learn (precomputed, windows), else None."""
    import torch

    if samples.proposals is not None:
        return samples.proposals[i]
    source = model.proposal_source
    if not hasattr(source, "windows"):
        return None
    with torch.no_grad():  # the windows of the resized image, in original pixels
        h, w = samples.images[i].shape[-2:]
        resized = model.transform([samples.images[i]])[0].image_sizes[0]
        boxes = source.windows(*resized).clone()
    return boxes * torch.tensor([w / resized[1], h / resized[0]] * 2)


def covered(model, samples, count: int) -> tuple:
    """The first ``count`` images whose every object has a fixed proposal at IoU >= 0.5, and how many were left out.

    A detector whose proposals miss an object cannot find it however well it fits (VOC counts a
    detection at IoU > 0.5), so the overfit check trains on images it can represent. Models with
    a learned source (the RPN) take the first ``count`` images.
    """
    from torchvision.ops import box_iou

    keep = []
    for i in range(len(samples.images)):
        boxes, gt = fixed_proposals(model, samples, i), samples.targets[i]["boxes"]
        if boxes is None or not len(gt):
            keep.append(i)
        elif len(boxes) and bool((box_iou(gt, boxes.to(gt.dtype)).amax(1) >= 0.5).all()):
            keep.append(i)  # every object (a row) has some box (a column) at IoU >= 0.5
        if len(keep) == count:
            break
    skipped = (keep[-1] + 1 - len(keep)) if keep else len(samples.images)
    return samples.subset_of(keep or list(range(min(count, len(samples.images))))), skipped


def check_overfit(model, config, samples, cap: int | None = None, skipped: int = 0) -> Verdict:
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
    if skipped:
        details.append(f"{skipped} earlier image(s) left out: an object there has no proposal at IoU >= 0.5")
    return Verdict("overfit", status, measured, expected, hint, details, curve, time.perf_counter() - tick)
