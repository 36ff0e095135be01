"""What every check returns (:class:`Verdict`) and the stop rule shared by the sweep and ``tune``.

A verdict is one line for the user: pass / warn / fail, the measured figure,
the expected one, and a hint when it does not pass; ``curves`` carries the
series the page plots. :func:`explosion_index` is the CS231n rule "stop when
the loss passes three times its starting value, or turns NaN", on a smoothed
loss so that one noisy batch does not end a run.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

PASS, WARN, FAIL = "pass", "warn", "fail"


@dataclass
class Verdict:
    """One check's outcome. ``measured``/``expected`` are short human strings (units included)."""

    name: str
    status: str  # PASS, WARN or FAIL
    measured: str
    expected: str
    hint: str = ""  # what to try when the check does not pass
    details: list[str] = field(default_factory=list)  # further lines (per-term figures, rules used)
    curves: dict = field(default_factory=dict)  # name -> {"x": [...], "y": [...], ...} for the page
    seconds: float = 0.0

    def line(self) -> str:
        """The one line printed for this check."""
        text = f"{self.status.upper():4}  {self.name}: {self.measured} (expected {self.expected})"
        if self.status != PASS and self.hint:
            text += f"; hint: {self.hint}"
        return text

    def to_json(self) -> dict:
        return asdict(self)


def worst(statuses) -> str:
    """The worst of some statuses (fail > warn > pass); pass for none."""
    order = {PASS: 0, WARN: 1, FAIL: 2}
    return max(statuses, key=order.__getitem__, default=PASS)


def smoothed(values: list[float], beta: float = 0.8) -> list[float]:
    """Debiased exponential moving average (NaN stays NaN from where it appears)."""
    out, avg = [], 0.0
    for i, v in enumerate(values, start=1):
        avg = beta * avg + (1 - beta) * v
        out.append(avg / (1 - beta**i))
    return out


def explosion_index(losses: list[float], factor: float = 3.0, beta: float = 0.8) -> int | None:
    """Index of the first loss that is NaN/inf or whose smoothed value passes ``factor`` x the first loss.

    None when the run never exploded. The first loss is the start value; the moving average
    (``beta``) keeps one unlucky batch from counting as an explosion.
    """
    if not losses:
        return None
    start = losses[0]
    if not math.isfinite(start):
        return 0
    for i, (raw, avg) in enumerate(zip(losses, smoothed(losses, beta))):
        if not math.isfinite(raw) or avg > factor * start:
            return i
    return None


def fmt(value: float) -> str:
    """A number in 4 significant digits (learning rates and losses alike)."""
    return "nan" if value is None or not math.isfinite(value) else f"{value:.4g}"
