"""The search space of ``detladder tune``: ``--space key=LOW:HIGH[:log]``, sampling, narrowing.

Random search, not a grid (Bergstra & Bengio 2012): every trial draws every
key, so each trial tries a new value of the key that matters most. Learning
rates and weight decays vary over orders of magnitude, so they are drawn
log-uniformly. The fine stage narrows every range to a quarter of its width
(in log space for log keys) around the best coarse trial.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from dataclasses import dataclass

import numpy as np

from eval.errors import InputError

FINE_WIDTH = 0.25  # the fine stage's range: this fraction of the coarse range's width


@dataclass(frozen=True)
class Param:
    """One searched config key and its range; ``integer`` keys are rounded after drawing."""

    key: str
    low: float
    high: float
    log: bool = True
    integer: bool = False

    def draw(self, rng: np.random.Generator) -> float | int:
        if self.log:
            value = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        else:
            value = rng.uniform(self.low, self.high)
        return int(round(value)) if self.integer else float(value)

    def around(self, centre: float) -> "Param":
        """This range narrowed to ``FINE_WIDTH`` of its width around ``centre``, kept inside the bounds."""
        to = (math.log if self.log else float)
        back = (math.exp if self.log else float)
        lo, hi, c = to(self.low), to(self.high), to(centre)
        half = (hi - lo) * FINE_WIDTH / 2
        start = min(max(c - half, lo), hi - 2 * half)
        return dataclasses.replace(self, low=back(start), high=back(start + 2 * half))


def numeric_keys(tree: dict, prefix: str = "") -> dict[str, object]:
    """Every leaf of a config tree by dotted key (``train.lr`` -> 0.002)."""
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(numeric_keys(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _number(text: str, what: str, item: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InputError(None, f"--space {item}: {what} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise InputError(None, f"--space {item}: {what} {text!r} is not a finite number")
    return value


def parse_param(item: str, leaves: dict[str, object]) -> Param:
    """One ``key=LOW:HIGH[:log]`` checked against the config's keys (``leaves``, from :func:`numeric_keys`)."""
    if "=" not in item:
        raise InputError(None, f"--space {item!r}: expected key=LOW:HIGH or key=LOW:HIGH:log")
    key, raw = (s.strip() for s in item.split("=", 1))
    if key not in leaves:
        close = difflib.get_close_matches(key, list(leaves), n=1, cutoff=0.6)
        hint = f" — did you mean {close[0]}?" if close else ""
        raise InputError(None, f"--space {item}: the config has no key {key}{hint}")
    current = leaves[key]
    if isinstance(current, bool) or not isinstance(current, (int, float)):
        raise InputError(None, f"--space {item}: {key} is not a number in the config (it is {current!r})")
    parts = raw.split(":")
    if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2].strip() != "log"):
        raise InputError(None, f"--space {item}: expected LOW:HIGH or LOW:HIGH:log after '='")
    low, high = _number(parts[0], "LOW", item), _number(parts[1], "HIGH", item)
    log = len(parts) == 3
    if low >= high:
        raise InputError(None, f"--space {item}: LOW must be below HIGH")
    if log and low <= 0:
        raise InputError(None, f"--space {item}: a log range must lie above 0 (LOW is {parts[0]})")
    return Param(key, low, high, log, integer=isinstance(current, int))


def default_space(config) -> list[Param]:
    """train.lr from a tenth to ten times its configured value and train.weight_decay 1e-6..1e-2, both log."""
    lr = config.train.lr
    return [Param("train.lr", lr / 10, lr * 10), Param("train.weight_decay", 1e-6, 1e-2)]


def parse_space(items: list[str], config) -> list[Param]:
    """The ``--space`` items (default: :func:`default_space`); a key named twice is refused."""
    if not items:
        return default_space(config)
    leaves = numeric_keys(dataclasses.asdict(config))
    params = [parse_param(item, leaves) for item in items]
    keys = [p.key for p in params]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise InputError(None, f"--space names {twice[0]} more than once")
    return params
