"""detladder tune (issue 15): the search space, determinism, the stop rule, resuming and the command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from detect.config import load_config
from detect.tuning import fine_space, trial_values, tune
from detect.tuning.space import Param, parse_space
from eval.errors import InputError
from tests.conftest import REPO
from tests.detect.ladder_util import LADDER

REGRESSION = LADDER / "regression.yaml"
TINY = ["model.backbone.width=8", "train.iterations=5", "train.batch_size=4", "train.warmup_iterations=1"]


# --------------------------------------------------------------------------- the space


@pytest.mark.parametrize("item, message", [
    ("train.lrr=1e-4:1e-2:log", "the config has no key train.lrr — did you mean train.lr?"),
    ("train.lr=abc:1e-2", "LOW 'abc' is not a number"),
    ("train.lr=1e-2:1e-3:log", "LOW must be below HIGH"),
    ("train.lr=0.01:0.01", "LOW must be below HIGH"),
    ("train.lr=0:1e-2:log", "a log range must lie above 0"),
    ("train.lr=1e-4:1e-2:linear", "expected LOW:HIGH or LOW:HIGH:log"),
    ("model.backbone.name=1:2", "is not a number in the config"),
    ("train.lr", "expected key=LOW:HIGH"),
])
def test_bad_space_items_are_refused_with_a_reason(item, message):
    with pytest.raises(InputError, match=message.replace("?", r"\?")):
        parse_space([item], load_config(REGRESSION))


def test_space_defaults_and_kinds():
    cfg = load_config(REGRESSION)
    default = parse_space([], cfg)
    assert [(p.key, p.log) for p in default] == [("train.lr", True), ("train.weight_decay", True)]
    assert default[0].low == pytest.approx(cfg.train.lr / 10) and default[0].high == pytest.approx(cfg.train.lr * 10)
    (p,) = parse_space(["train.batch_size=2:16"], cfg)
    assert p.integer and not p.log


def test_log_uniform_draws_stay_in_range_with_the_geometric_median():
    p = Param("train.lr", 1e-5, 1e-1, log=True)
    rng = np.random.default_rng(0)
    draws = np.array([p.draw(rng) for _ in range(4000)])
    assert draws.min() >= 1e-5 and draws.max() <= 1e-1
    assert np.median(draws) == pytest.approx(1e-3, rel=0.15)  # uniform in log: the median is the geometric mean
    assert np.mean(draws < 1e-4) == pytest.approx(0.25, abs=0.03)  # a quarter of the decades, a quarter of draws
    assert isinstance(Param("k", 1, 10, log=False, integer=True).draw(rng), int)


def test_fine_ranges_are_a_quarter_wide_around_the_best_coarse_trial_inside_the_bounds():
    p = Param("train.lr", 1e-4, 1e0, log=True)  # 4 decades
    (mid,) = fine_space([p], [{"trial": 0, "mAP": 0.5, "values": {"train.lr": 1e-3}},
                             {"trial": 1, "mAP": 0.7, "values": {"train.lr": 1e-2}},
                             {"trial": 2, "mAP": None, "values": {"train.lr": 0.5}}])
    assert mid.low == pytest.approx(10**-2.5) and mid.high == pytest.approx(10**-1.5)  # one decade around 1e-2
    (edge,) = fine_space([p], [{"trial": 0, "mAP": 0.1, "values": {"train.lr": 0.9}}])
    assert edge.high == pytest.approx(1.0) and edge.low == pytest.approx(0.1)  # shifted inside, still one decade
    assert fine_space([p], [{"trial": 0, "mAP": None, "values": {"train.lr": 0.9}}]) == [p]


def test_trial_values_are_a_function_of_seed_and_index():
    params = parse_space([], load_config(REGRESSION))
    assert trial_values(3, 7, params) == trial_values(3, 7, params)
    assert trial_values(3, 7, params) != trial_values(4, 7, params) != trial_values(3, 8, params)


# --------------------------------------------------------------------------- the search


def _tune(root, out, **kwargs):
    lines: list[str] = []
    kwargs.setdefault("trials", 2)
    result = tune(REGRESSION, out, data_root=root, overrides=kwargs.pop("overrides", TINY), say=lines.append,
                  threads=1, **kwargs)
    return result, lines


class _Killed(Exception):
    pass


def test_search_writes_its_files_resumes_after_a_kill_and_is_deterministic(synth_root, tmp_path):
    whole, lines = _tune(synth_root, tmp_path / "a")
    assert len(lines) == 2 and "(coarse)" in lines[0] and "(fine)" in lines[1]
    records = [json.loads(line) for line in (tmp_path / "a" / "trials.jsonl").read_text().splitlines()]
    assert [r["trial"] for r in records] == [0, 1] and all(r["status"] == "finished" for r in records)
    best = load_config(tmp_path / "a" / "best.yaml")  # inherits the config through _base_
    assert best.train.lr == pytest.approx(whole.best["values"]["train.lr"])
    assert best.train.iterations == load_config(REGRESSION).train.iterations  # the trials' --set is not carried
    page = (tmp_path / "a" / "tune.html").read_text()
    assert page.count("<img") == 3 and "<script" not in page

    def kill_after_first(line):  # the process dies right after trial 0 is recorded
        raise _Killed(line)

    with pytest.raises(_Killed):
        tune(REGRESSION, tmp_path / "b", trials=2, data_root=synth_root, overrides=TINY, say=kill_after_first,
             threads=1)
    first = (tmp_path / "b" / "trials" / "000" / "result.json").stat().st_mtime_ns
    again, lines_b = _tune(synth_root, tmp_path / "b")
    assert (tmp_path / "b" / "trials" / "000" / "result.json").stat().st_mtime_ns == first  # not rerun
    assert [(r["values"], r["mAP"]) for r in again.records] == [(r["values"], r["mAP"]) for r in whole.records]


def test_a_trial_whose_loss_explodes_is_stopped_early(synth_root, tmp_path):
    result, lines = _tune(synth_root, tmp_path / "s", trials=1, space=["train.lr=1e3:1e4:log"],
                          overrides=[*TINY, "train.iterations=10", "train.warmup_iterations=0"])
    (record,) = result.records
    assert record["status"].startswith("stopped early") and record["mAP"] is None, record
    assert record["stopped_at"] is not None and record["stopped_at"] <= 10
    assert result.best is None and not (tmp_path / "s" / "best.yaml").exists()


def test_a_search_with_other_settings_is_not_continued(synth_root, tmp_path):
    _tune(synth_root, tmp_path / "c", trials=1)
    with pytest.raises(InputError, match="other settings .*seed"):
        _tune(synth_root, tmp_path / "c", trials=1, seed=5)


def test_cli_space_errors_exit_2_with_one_line(tmp_path, capsys):
    from detect.cli import main

    code = main(["tune", "--config", str(REGRESSION), "--trials", "2", "--out", str(tmp_path / "t"),
                 "--space", "train.weight_decy=1e-6:1e-2:log"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "did you mean train.weight_decay?" in err
    assert not (tmp_path / "t").exists()


def test_under_torchrun_the_trials_are_shared_out_across_ranks(synth_root, tmp_path):
    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists():
        pytest.skip("torchrun not installed next to this interpreter")
    sets = [a for s in TINY for a in ("--set", s)]
    done = subprocess.run([str(torchrun), "--standalone", "--nproc_per_node=2", "-m", "detect.cli", "tune",
                           "--config", str(REGRESSION), "--data", str(synth_root), "--trials", "4", "--threads", "1",
                           "--out", str(tmp_path / "d"), *sets], cwd=REPO, capture_output=True, text=True,
                          timeout=300, env=dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO)))
    assert done.returncode == 0, done.stderr[-2000:]
    records = [json.loads(line) for line in (tmp_path / "d" / "trials.jsonl").read_text().splitlines()]
    assert [(r["trial"], r["rank"]) for r in records] == [(0, 0), (1, 1), (2, 0), (3, 1)]
    params = parse_space([], load_config(REGRESSION))
    assert [r["values"] for r in records[:2]] == [trial_values(i, 0, params) for i in (0, 1)]
    assert done.stdout.count("best: trial") == 1  # rank 0 alone reports


def test_a_spent_budget_runs_no_trial_and_says_how_to_continue(synth_root, tmp_path):
    notes: list[str] = []
    result = tune(REGRESSION, tmp_path / "b", trials=2, data_root=synth_root, overrides=TINY, budget_seconds=0,
                  note=notes.append)
    assert result.records == [] and result.best is None
    assert not (tmp_path / "b" / "trials" / "000" / "checkpoint.pt").exists()
    assert notes == ["the budget ran out after 0 of 2 trials; run the same command to continue"]


def test_a_trial_killed_mid_run_continues_from_its_checkpoint_to_the_same_result(synth_root, tmp_path):
    from detect.train import train
    from detect.tuning.trial import run_trial, trial_overrides

    cfg = load_config(REGRESSION, [*TINY, f"data.root={synth_root}", *trial_overrides({"train.lr": 0.003}, 5)])
    whole = run_trial(cfg, tmp_path / "whole", stop_factor=3.0, deadline=None, device="cpu")
    train(cfg, tmp_path / "cut", stop_at=2, device="cpu")  # killed after the second chunk's checkpoint
    assert not (tmp_path / "cut" / "model.pt").exists()
    resumed = run_trial(cfg, tmp_path / "cut", stop_factor=3.0, deadline=None, device="cpu")
    assert resumed["losses"] == whole["losses"] and len(whole["losses"]) == 5
    assert resumed["mAP"] == whole["mAP"] and resumed["status"] == "finished"
