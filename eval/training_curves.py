"""Training curves for the report, and the rule that says whether a run was stopped before its loss flattened.

A comparison is only fair if no variant was stopped while its loss was still falling. The rule used
everywhere (``compare``'s metrics, the report's training table and sentences) is
:func:`loss_flattened`: the mean loss of the last tenth of the iterations is compared with the mean of
the tenth before it; a drop of less than :data:`FLAT_DROP` (5%) counts as flattened. Means over a tenth
of the run smooth the per-batch noise; a run of fewer than :data:`MIN_ITERATIONS` iterations gets no
verdict.

Numpy only; works on the records of a run's ``log.jsonl`` (dicts with ``iteration``, ``loss``,
``seconds`` and, for validation, ``event: "validation"`` with ``mAP``).
"""

from __future__ import annotations

import math

import numpy as np

FLAT_DROP = 0.05
MIN_ITERATIONS = 20
MAX_POINTS = 200  # points kept per curve in metrics.json


def loss_flattened(losses) -> tuple[float | None, bool | None]:
    """(relative change of the last tenth's mean loss against the tenth before it, flattened?).

    The change is ``last / previous - 1`` (negative while the loss falls); flattened when it is above
    ``-FLAT_DROP``. Both are None for fewer than :data:`MIN_ITERATIONS` finite losses.
    """
    values = np.asarray([v for v in losses if v is not None and math.isfinite(v)], np.float64)
    if len(values) < MIN_ITERATIONS:
        return None, None
    tenth = len(values) // 10
    last, previous = values[-tenth:].mean(), values[-2 * tenth:-tenth].mean()
    if previous <= 0:
        return None, None
    change = float(last / previous - 1.0)
    return change, change > -FLAT_DROP


def _moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over ``window`` points (shorter at the start), same length as ``values``."""
    if len(values) == 0 or window <= 1:
        return values.astype(np.float64)
    cumulative = np.concatenate([[0.0], np.cumsum(values, dtype=np.float64)])
    idx = np.arange(1, len(values) + 1)
    lo = np.maximum(idx - window, 0)
    return (cumulative[idx] - cumulative[lo]) / (idx - lo)


def _thin(n: int, max_points: int) -> np.ndarray:
    """Indices of at most ``max_points`` evenly spread points of ``n``, always keeping both ends."""
    if n <= max_points:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max_points).round().astype(np.int64))


def training_curve(records: list[dict], max_points: int = MAX_POINTS) -> dict | None:
    """The report's training record of one run from its log records; None when the log holds no losses.

    Returns ``{"iterations", "seconds": [...], "loss": [...] (smoothed over ~2% of the run), "val_seconds",
    "val_mAP", "last_tenth_change", "flattened"}``; seconds are cumulative training seconds.
    """
    steps = [r for r in records if r.get("event") is None and "iteration" in r]
    seconds = np.cumsum([float(r.get("seconds") or 0.0) for r in steps])
    at_iteration = {int(r["iteration"]): float(t) for r, t in zip(steps, seconds)}
    points = [(t, r["loss"]) for r, t in zip(steps, seconds) if isinstance(r.get("loss"), (int, float))]
    if not points:
        return None
    t = np.asarray([p[0] for p in points])
    loss = np.asarray([p[1] for p in points], np.float64)
    smooth = _moving_average(loss, max(1, len(loss) // 50))
    keep = _thin(len(loss), max_points)
    validations = [r for r in records if r.get("event") == "validation" and r.get("mAP") is not None]
    change, flat = loss_flattened(loss.tolist())
    return {
        "iterations": int(steps[-1]["iteration"]) if steps else 0,
        "seconds": [round(float(x), 3) for x in t[keep]],
        "loss": [float(x) for x in smooth[keep]],
        "val_seconds": [at_iteration.get(int(r["iteration"]), 0.0) for r in validations],
        "val_mAP": [float(r["mAP"]) for r in validations],
        "last_tenth_change": change,
        "flattened": flat,
    }
