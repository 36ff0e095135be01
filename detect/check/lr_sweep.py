"""Check 4: the learning-rate sweep (a "learning-rate finder").

From a fresh model, one step per batch with the learning rate rising
exponentially from ``check.sweep_lr_min`` to ``check.sweep_lr_max`` over
``check.sweep_iterations`` steps, with the config's optimiser and weight decay;
it stops as soon as the (smoothed) loss passes ``check.stop_factor`` x its
first value or turns NaN (:func:`detect.check.verdict.explosion_index`).

Suggested rate, the rule printed with it: one tenth of the rate at which the
smoothed loss was lowest (past that point the steps start to overshoot; a
tenth keeps a margin). The verdict compares ``train.lr`` with the sweep: fail
when it is at or beyond the rate where the loss exploded, warn when it is more
than 10x away from the suggestion, else pass.
"""

from __future__ import annotations

import math
import time

import numpy as np

from detect.check.steps import set_lr, step
from detect.check.verdict import FAIL, PASS, WARN, Verdict, explosion_index, fmt, smoothed

RULE = "one tenth of the learning rate at the lowest smoothed loss"


def sweep_rates(lr_min: float, lr_max: float, n: int) -> np.ndarray:
    """``n`` rates rising exponentially from ``lr_min`` to ``lr_max`` (both included)."""
    return np.geomspace(lr_min, lr_max, max(n, 2))


def suggest(rates: list[float], losses: list[float]) -> float:
    """:data:`RULE` applied to a (stopped) sweep; losses after an explosion are left out by the caller."""
    avg = smoothed(losses)
    finite = [i for i, v in enumerate(avg) if math.isfinite(v)]
    best = min(finite, key=avg.__getitem__)
    return rates[best] / 10


def run_sweep(model, config, samples) -> tuple[list[float], list[float], int | None]:
    """(rates, losses, index where it exploded or None); the model is trained in place."""
    from detect.engine.schedule import build_optimizer

    chk = config.check
    optimizer = build_optimizer(model, config.train)
    rates = sweep_rates(chk.sweep_lr_min, chk.sweep_lr_max, chk.sweep_iterations).tolist()
    done_rates, losses = [], []
    for it, lr in enumerate(rates):
        set_lr(optimizer, lr)
        out = step(model, optimizer, samples.batch(it), seed=config.seed, it=it, grad_clip=config.train.grad_clip)
        done_rates.append(lr)
        losses.append(out["loss"])
        stop = explosion_index(losses, chk.stop_factor)
        if stop is not None:
            return done_rates, losses, stop
    return done_rates, losses, None


def check_lr_sweep(model, config, samples) -> Verdict:
    """Run the sweep on ``model`` and judge ``train.lr`` against it."""
    tick = time.perf_counter()
    chk, lr = config.check, config.train.lr
    rates, losses, stop = run_sweep(model, config, samples)
    usable = losses[:stop] if stop else losses
    curve = {"sweep": {"x": rates, "y": losses, "stop": stop}}
    if not usable:
        return Verdict("learning-rate sweep", FAIL, f"the loss was {fmt(losses[0])} at the first step",
                       "a finite loss", "the model's loss is not finite before any update: check the data",
                       [], curve, time.perf_counter() - tick)
    best = suggest(rates, usable)
    curve["sweep"]["suggested"] = best
    details = [f"suggested learning rate {fmt(best)}: {RULE}",
               f"rates {fmt(rates[0])} to {fmt(rates[-1])} in {len(rates)} steps, stop rule: loss above "
               f"{chk.stop_factor:g}x its start or NaN"]
    if stop is not None:
        exploded = rates[stop]
        details.append(f"the loss exploded at lr {fmt(exploded)} (step {stop + 1})")
        measured = f"exploded at lr {fmt(exploded)}, suggested {fmt(best)}, configured {fmt(lr)}"
    else:
        exploded = math.inf
        measured = f"no explosion up to lr {fmt(rates[-1])}, suggested {fmt(best)}, configured {fmt(lr)}"
    expected = f"train.lr below the explosion and within 10x of {fmt(best)}"
    if lr >= exploded:
        status, hint = FAIL, f"train.lr {fmt(lr)} is where the loss already explodes; try {fmt(best)}"
    elif lr > 10 * best or lr < best / 10:
        status, hint = WARN, f"train.lr {fmt(lr)} is far from the sweep's {fmt(best)}; try values near it (or `tune`)"
    else:
        status, hint = PASS, ""
    return Verdict("learning-rate sweep", status, measured, expected, hint, details, curve, time.perf_counter() - tick)
