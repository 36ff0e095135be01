"""Timing with a fixed thread count, and the busy-machine verdict the report shows."""

from __future__ import annotations

import pytest
import torch

from detect.compare import _scale_schedule
from detect.config import TrainConfig
from detect.engine.threads import BUSY_WALL_PER_CPU, busy_verdict, torch_threads


def test_torch_threads_sets_the_count_for_the_block_and_restores_it():
    before = torch.get_num_threads()
    with torch_threads(1) as n:
        assert n == 1 and torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with torch_threads(None) as n:
        assert n == before
    with pytest.raises(ValueError):
        with torch_threads(0):
            pass


def test_busy_verdict_reads_wall_against_cpu_for_one_thread():
    assert busy_verdict(1.02, 1) is None  # a quiet machine
    assert busy_verdict(None, 1) is None  # nothing timed yet
    warning = busy_verdict(BUSY_WALL_PER_CPU + 0.5, 1)
    assert warning is not None and "1.75x the CPU time" in warning and "idle machine" in warning
    assert busy_verdict(3.0, 2) is None  # several threads: no fixed undisturbed ratio, no verdict


def test_schedule_scale_shortens_iterations_warmup_steps_and_checkpoints_together():
    cfg = TrainConfig(iterations=700, warmup_iterations=50, steps=[400, 600], checkpoint_every=100)
    _scale_schedule(cfg, 0.2)
    assert (cfg.iterations, cfg.warmup_iterations, cfg.steps, cfg.checkpoint_every) == (140, 10, [80, 120], 20)


def test_train_runs_with_the_thread_count_it_is_given_and_restores_it(synth_root, tmp_path, monkeypatch):
    import detect.train as engine
    from detect.config import load_config

    seen = []
    real_step = engine._Loop.step
    monkeypatch.setattr(engine._Loop, "step", lambda self, it, batch: seen.append(torch.get_num_threads())
                        or real_step(self, it, batch))
    before = torch.get_num_threads()
    cfg = load_config("configs/ladder/regression.yaml", ["train.iterations=2", "train.batch_size=2"])
    engine.train(cfg, tmp_path / "run", data_root=synth_root, threads=1)
    assert seen == [1, 1] and torch.get_num_threads() == before
