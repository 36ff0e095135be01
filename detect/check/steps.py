"""One optimiser step on a batch, as the training engine takes it (detect/train.py's ``_Loop.step``).

Same seeding of the RPN/RoI samplers, same loss sum, same gradient clipping, so
what the overfit check and the sweep see is what ``detladder train`` would do.
The difference: a loss that is not finite (or a forward that fails because of
one) is returned as NaN instead of raised, since finding it is the point here.
"""

from __future__ import annotations

import math

import torch


def seed_for(seed: int, it: int) -> int:
    """The global-RNG seed of iteration ``it`` (the engine's rule for rank 0)."""
    return (seed * 1_000_003 + it) * 64


def losses_of(model, batch) -> dict[str, torch.Tensor]:
    """The model's training losses on ``batch`` = (images, targets, proposals or None)."""
    images, targets, props = batch
    return model(images, targets, props)


def step(model, optimizer, batch, *, seed: int, it: int, grad_clip: float | None) -> dict[str, float]:
    """One update; returns ``{"loss": total, <term>: value, ...}`` before the update (NaN on divergence)."""
    torch.manual_seed(seed_for(seed, it))
    try:
        losses = losses_of(model, batch)
    except (RuntimeError, ValueError, AssertionError) as exc:
        # Non-finite weights make torchvision's box coder or NMS refuse their input: that is divergence.
        if any(not torch.isfinite(p).all() for p in model.parameters()):
            return {"loss": math.nan, "error": str(exc).splitlines()[0][:200]}
        raise
    loss = sum(losses.values())
    out = {"loss": float(loss.detach()), **{k: float(v.detach()) for k, v in losses.items()}}
    if not math.isfinite(out["loss"]):
        return out
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    return out


def set_lr(optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
