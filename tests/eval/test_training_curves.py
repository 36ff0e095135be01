"""The rule that says whether a run was stopped before its loss flattened, and the curve the report draws."""

from __future__ import annotations

import pytest

from eval.training_curves import FLAT_DROP, loss_flattened, training_curve


def test_a_loss_still_falling_in_its_last_tenth_is_not_flattened():
    falling = [1.0 / (1 + 0.05 * i) for i in range(100)]
    change, flat = loss_flattened(falling)
    assert change == pytest.approx(sum(falling[90:]) / sum(falling[80:90]) - 1)
    assert change < -FLAT_DROP and flat is False


def test_a_plateau_with_noise_is_flattened():
    plateau = [2.0 - min(i, 50) * 0.02 + (0.01 if i % 2 else -0.01) for i in range(200)]
    change, flat = loss_flattened(plateau)
    assert abs(change) < 0.01 and flat is True


def test_too_short_or_non_finite_runs_get_no_verdict():
    assert loss_flattened([1.0] * 19) == (None, None)
    assert loss_flattened([float("nan")] * 30) == (None, None)


def test_training_curve_from_log_records():
    records = [{"event": "skipped", "iteration": 0, "count": 1, "files": ["x: bad"]}]
    records += [{"iteration": i + 1, "loss": 1.0, "seconds": 0.5} for i in range(10)]
    records.append({"event": "validation", "iteration": 10, "mAP": 0.25})
    records.append({"iteration": 11, "lr": 0.1, "skipped_batch": 1.0, "seconds": 0.1})  # no loss: no point
    curve = training_curve(records)
    assert curve["iterations"] == 11 and curve["loss"] == [1.0] * 10
    assert curve["seconds"] == [0.5 * (k + 1) for k in range(10)]
    assert curve["val_seconds"] == [5.0] and curve["val_mAP"] == [0.25]
    assert curve["flattened"] is None  # 10 iterations: too short
    assert training_curve([{"event": "skipped", "iteration": 0}]) is None


def test_long_curves_are_thinned_keeping_both_ends():
    records = [{"iteration": i + 1, "loss": 1.0 + i, "seconds": 1.0} for i in range(1000)]
    curve = training_curve(records, max_points=50)
    assert len(curve["seconds"]) == 50 and curve["seconds"][0] == 1.0 and curve["seconds"][-1] == 1000.0
