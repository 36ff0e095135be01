"""``detladder tune``: random search of training hyperparameters, scored by validation mAP.

    tune(CFG, OUT, trials=N)
      coarse stage: trials 0 .. ceil(N/2)-1, every key drawn over its whole range (detect/tuning/space.py)
      fine stage:   the rest, every range narrowed around the best coarse trial
      each trial:   OUT/trials/NNN/ = a short detect.train.train run (detect/tuning/trial.py)
    -> OUT/trials.jsonl (one line per finished trial), OUT/best.yaml (``_base_: CFG`` + the best values),
       OUT/tune.html (detect/tuning/page.py), OUT/search.json (the settings, checked on a re-run)

Deterministic for a seed: trial i of the coarse stage draws from ``default_rng([seed, i])``; the
fine stage's ranges follow from the coarse results, which the engine makes repeatable on the CPU.
Resumable: a trial with ``result.json`` is done and never rerun; an unfinished one continues from
its checkpoint. Under torchrun rank r runs trials r, r+K, ...; the ranks meet after each stage.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from detect.tuning.space import Param, parse_space
from eval.errors import InputError


@dataclass
class TuneResult:
    out: Path
    records: list[dict] = field(default_factory=list)
    best: dict | None = None
    files: list[Path] = field(default_factory=list)

    def summary(self) -> str:
        ran = f"{len(self.records)} trials"
        if self.best is None:
            return f"{ran}, none finished with a score; wrote {', '.join(map(str, self.files))}"
        values = ", ".join(f"{k}={v:.4g}" for k, v in self.best["values"].items())
        return (f"{ran}; best: trial {self.best['trial']} ({values}) mAP {self.best['mAP']:.4f}; "
                f"wrote {', '.join(map(str, self.files))}")


def _settings(config_path, space: list[Param], overrides: list[str], seed: int, trials: int) -> dict:
    return {"config": str(Path(config_path).resolve()), "space": [asdict(p) for p in space],
            "overrides": overrides, "seed": seed, "trials": trials}


def _check_settings(out: Path, settings: dict) -> None:
    """A re-run continues a search only with the same settings (else its trials would mean something else)."""
    from eval.files import atomic_write_json

    path = out / "search.json"
    if path.is_file():
        before = json.loads(path.read_text(encoding="utf-8"))
        if before != settings:
            changed = sorted(k for k in settings if before.get(k) != settings[k])
            raise InputError(out, f"holds a search with other settings ({', '.join(changed)} differ); "
                                  "use the same command to continue it, or another --out")
        return
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, settings)


def trial_values(i: int, seed: int, params: list[Param]) -> dict:
    """Trial ``i``'s values over ``params`` (the ranges of its stage)."""
    rng = np.random.default_rng([seed, i])
    return {p.key: p.draw(rng) for p in params}


def fine_space(params: list[Param], coarse: list[dict]) -> list[Param]:
    """The ranges narrowed around the best scored coarse trial (the whole ranges if none scored)."""
    scored = [r for r in coarse if r.get("mAP") is not None]
    if not scored:
        return params
    best = max(scored, key=lambda r: (r["mAP"], -r["trial"]))
    return [p.around(best["values"][p.key]) for p in params]


def tune(config_path, out, *, trials: int, data_root=None, budget_seconds: float | None = None,
         space: list[str] = (), overrides: list[str] = (), seed: int = 0, threads: int | None = None,
         say: Callable[[str], None] | None = None, note: Callable[[str], None] | None = None) -> TuneResult | None:
    """Run (or continue) the search; see the module docstring. Returns None on ranks other than 0."""
    from detect.config import load_config
    from detect.engine import distributed
    from detect.engine.threads import torch_threads

    say, note = say or (lambda m: None), note or (lambda m: None)
    overrides = list(overrides) + ([f"data.root={json.dumps(str(data_root))}"] if data_root is not None else [])
    base = load_config(config_path, overrides)
    params = parse_space(list(space), base)
    if trials < 1:
        raise InputError(None, "--trials must be at least 1")
    out = Path(out)
    dist = distributed.setup(distributed.resolve_device("auto"))
    if dist.is_main:
        _check_settings(out, _settings(config_path, params, overrides, seed, trials))
    distributed.barrier(dist)
    deadline = time.monotonic() + budget_seconds if budget_seconds is not None else None
    n_coarse = math.ceil(trials / 2)
    run_stage = _StageRunner(config_path, overrides, out, base.check.stop_factor, deadline, dist, say)
    with torch_threads(threads):
        coarse = run_stage("coarse", range(n_coarse), params, seed)
        fine = run_stage("fine", range(n_coarse, trials), fine_space(params, coarse), seed)
    records = coarse + fine
    if len(records) < trials:
        note(f"the budget ran out after {len(records)} of {trials} trials; run the same command to continue")
    if not dist.is_main:
        return None
    return _finish(out, Path(config_path), params, records)


class _StageRunner:
    """Runs one stage's trials (this rank's share), then gathers every rank's records."""

    def __init__(self, config_path, overrides, out: Path, stop_factor: float, deadline, dist, say):
        self.config_path, self.overrides, self.out = config_path, overrides, out
        self.stop_factor, self.deadline, self.dist, self.say = stop_factor, deadline, dist, say

    def __call__(self, stage: str, indices, params: list[Param], seed: int) -> list[dict]:
        from detect.engine import distributed

        mine = []
        for i in indices:
            if i % self.dist.world_size != self.dist.rank:
                continue
            record = self.one(stage, i, trial_values(i, seed, params))
            if record is None:
                break
            mine.append(record)
        records = [r for part in distributed.gather_objects(self.dist, mine) for r in part]
        return sorted(records, key=lambda r: r["trial"])

    def one(self, stage: str, i: int, values: dict) -> dict | None:
        from detect.config import load_config
        from detect.tuning.trial import read_result, run_trial, trial_overrides
        from eval.files import atomic_write_json

        run = self.out / "trials" / f"{i:03d}"
        result = read_result(run)
        if result is None:
            cfg = load_config(self.config_path, self.overrides)
            cfg = load_config(self.config_path, self.overrides + trial_overrides(values, cfg.train.iterations))
            run.mkdir(parents=True, exist_ok=True)
            result = run_trial(cfg, run, stop_factor=self.stop_factor, deadline=self.deadline)
            if result is None:
                return None
            result = {"trial": i, "stage": stage, "values": values, "run": os.path.join("trials", f"{i:03d}"),
                      "rank": self.dist.rank, **result}
            atomic_write_json(run / "result.json", result)
        score = f"mAP {result['mAP']:.4f}" if result["mAP"] is not None else result["status"]
        shown = " ".join(f"{k}={v:.4g}" for k, v in result["values"].items())
        self.say(f"trial {i} ({stage}) {shown}: {score} ({result['seconds']:.0f} s)")
        return result


def _finish(out: Path, config_path: Path, params: list[Param], records: list[dict]) -> TuneResult:
    """trials.jsonl, best.yaml and tune.html from every finished trial."""
    import yaml

    from detect.tuning.page import render_tune_page
    from eval.files import atomic_write_text

    lines = "".join(json.dumps({k: v for k, v in r.items() if k != "losses"}) + "\n" for r in records)
    files = [atomic_write_text(out / "trials.jsonl", lines)]
    scored = [r for r in records if r["mAP"] is not None]
    best = max(scored, key=lambda r: (r["mAP"], -r["trial"])) if scored else None
    if best is not None:
        tree: dict = {"_base_": os.path.relpath(config_path.resolve(), out.resolve())}
        for key, value in best["values"].items():
            node = tree
            *parents, leaf = key.split(".")
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = value
        head = (f"# detladder tune: trial {best['trial']} of {len(records)}, validation mAP {best['mAP']:.4f}\n"
                f"# (the trials may have run with shorter --set schedules; this file sets only the searched keys)\n")
        files.append(atomic_write_text(out / "best.yaml", head + yaml.safe_dump(tree, sort_keys=False)))
    files.append(atomic_write_text(out / "tune.html", render_tune_page(params, records, best)))
    return TuneResult(out, records, best, files)


__all__ = ["tune", "TuneResult", "trial_values", "fine_space"]
