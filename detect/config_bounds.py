"""Ranges of numeric config fields, declared next to the field: ``lr: float = bounded(1e-3, gt=0)``.

A bound lives in the field's metadata, so the dataclass in ``detect/config.py``
is the one place that says both a key's default and what values make sense;
:func:`detect.config.config_from_tree` checks every value a file or ``--set``
gives, and :func:`detect.config.check_setting` checks a command-line option that
stands for a key (``detect --score-thresh``). For a list field the bound applies
to every number in it; ``None`` (an optional field switched off) is never checked.
A dataclass may also name pairs of its fields that must be ordered,
``ORDERED: ClassVar = (("bg_iou_thresh", "fg_iou_thresh"),)``: low <= high.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Callable

BOUNDS_KEY = "bounds"


@dataclass(frozen=True)
class Bounds:
    """An interval: ``ge``/``le`` include their end, ``gt``/``lt`` exclude it; None = unbounded."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None

    def holds(self, x: float) -> bool:
        if isinstance(x, float) and not math.isfinite(x):
            return False
        return ((self.ge is None or x >= self.ge) and (self.gt is None or x > self.gt)
                and (self.le is None or x <= self.le) and (self.lt is None or x < self.lt))

    def describe(self) -> str:
        """``"at least 1"``, ``"greater than 0"``, ``"between 0 and 1"``, ``"at least 0 and below 1"``."""
        low = f"at least {_num(self.ge)}" if self.ge is not None else (
            f"greater than {_num(self.gt)}" if self.gt is not None else None)
        high = f"at most {_num(self.le)}" if self.le is not None else (
            f"below {_num(self.lt)}" if self.lt is not None else None)
        if self.ge is not None and self.le is not None:
            return f"between {_num(self.ge)} and {_num(self.le)}"
        return " and ".join(part for part in (low, high) if part) or "a finite number"


def _num(x: float) -> str:
    return f"{x:g}"


PROBABILITY = {"ge": 0.0, "le": 1.0}  # thresholds, IoUs and fractions


def bounded(default: Any = dataclasses.MISSING, *, factory: Callable[[], Any] | None = None,
            ge: float | None = None, gt: float | None = None, le: float | None = None,
            lt: float | None = None) -> Any:
    """A dataclass ``field`` with a default (or ``factory``) and the range its numbers must lie in."""
    meta = {BOUNDS_KEY: Bounds(ge=ge, gt=gt, le=le, lt=lt)}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def bounds_of(f: dataclasses.Field) -> Bounds | None:
    return f.metadata.get(BOUNDS_KEY)


def out_of_bounds(value: Any, bounds: Bounds) -> float | None:
    """The first number in ``value`` (a number, or nested lists of them) outside ``bounds``; None if all hold."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (list, tuple)):
        for item in value:
            bad = out_of_bounds(item, bounds)
            if bad is not None:
                return bad
        return None
    if isinstance(value, (int, float)) and not bounds.holds(value):
        return value
    return None
