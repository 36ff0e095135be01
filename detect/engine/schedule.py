"""Optimiser and learning-rate schedule of a training run (from ``config.train``).

The schedule is a pure function of the iteration, ``lr(it) = base_lr * factor(it)``:
linear warm-up from ``warmup_factor`` over ``warmup_iterations``, then
``constant``, ``step`` (multiply by ``gamma`` at each of ``steps``) or ``cosine``
decay to zero at ``iterations``. Being a function of the iteration only, a
resumed run gets the same learning rates as an uninterrupted one.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def lr_factor(it: int, *, iterations: int, warmup_iterations: int, schedule: str, steps=(), gamma: float = 0.1,
              warmup_factor: float = 0.001) -> float:
    """Multiplier of the base learning rate at (0-based) iteration ``it``."""
    if schedule == "step":
        factor = gamma ** sum(it >= s for s in steps)
    elif schedule == "cosine":
        progress = min(max(it - warmup_iterations, 0) / max(iterations - warmup_iterations, 1), 1.0)
        factor = 0.5 * (1.0 + math.cos(math.pi * progress))
    elif schedule == "constant":
        factor = 1.0
    else:
        raise ValueError(f"unknown schedule {schedule!r}")
    if it < warmup_iterations:
        alpha = it / warmup_iterations
        factor *= warmup_factor * (1 - alpha) + alpha
    return factor


def build_optimizer(model: nn.Module, train_cfg) -> torch.optim.Optimizer:
    """SGD with momentum or AdamW over the trainable parameters; no weight decay on norms and biases."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (no_decay if param.ndim <= 1 else decay).append(param)
    groups = [{"params": decay, "weight_decay": train_cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if train_cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=train_cfg.lr, momentum=train_cfg.momentum)
    if train_cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=train_cfg.lr)
    raise ValueError(f"unknown optimizer {train_cfg.optimizer!r}")


def build_scheduler(optimizer: torch.optim.Optimizer, train_cfg) -> torch.optim.lr_scheduler.LambdaLR:
    """A LambdaLR whose step ``it`` applies :func:`lr_factor` (call ``step()`` after each iteration)."""
    kwargs = dict(
        iterations=train_cfg.iterations, warmup_iterations=train_cfg.warmup_iterations,
        schedule=train_cfg.schedule, steps=tuple(train_cfg.steps), gamma=train_cfg.gamma,
    )
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda it: lr_factor(it, **kwargs))
