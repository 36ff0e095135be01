"""``detladder check`` and ``detladder tune``: babysitting the learning process (docs/babysitting.md).

Each command loads the config, calls one library function (``detect.check.run_checks``,
``detect.tuning.tune``) and prints its lines; ``check`` exits 1 when a check fails.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    """Add the top-level ``check`` and ``tune`` commands."""
    app.command("check")(check_command)
    app.command("tune")(tune_command)


def _note(message: str) -> None:
    print(f"detladder: {message}", file=sys.stderr)


def check_command(
    config: Path = typer.Option(..., "--config", help="YAML config (e.g. configs/ladder/faster_rcnn.yaml)."),
    data: Optional[Path] = typer.Option(None, "--data", help="VOC root (default: the config's data.root)."),
    set_: Optional[list[str]] = typer.Option(None, "--set", help="Config override key=value (repeatable), "
                                             "e.g. check.overfit_iterations=300 or check.init_scale=30."),
    out: Path = typer.Option(Path("runs/check"), "--out", help="Directory for check.json and check.html."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="Torch CPU threads (default: all cores)."),
) -> int:
    """Sanity checks before a long run: initial loss, overfit a few images, gradient check, learning-rate sweep.

    Prints one verdict line per check (pass / warn / fail, measured, expected, a hint); exits 1 if any fails.

    Example: detladder check --config configs/ladder/faster_rcnn.yaml --data runs/synth --out runs/check
    """
    from detect.check import run_checks
    from detect.config import load_config

    cfg = load_config(config, list(set_ or []))
    report = run_checks(cfg, out, data_root=data, config_name=str(config), say=print, threads=threads)
    print(f"{report.status}: {sum(v.status == 'fail' for v in report.verdicts)} of {len(report.verdicts)} checks "
          f"failed; wrote {', '.join(str(p) for p in report.files)}")
    return 1 if report.status == "fail" else 0


def tune_command(
    config: Path = typer.Option(..., "--config", help="YAML config whose values the search varies."),
    out: Path = typer.Option(..., "--out", help="Search directory: trials.jsonl, best.yaml, tune.html, trials/."),
    trials: int = typer.Option(..., "--trials", min=1, help="Number of trials (half coarse, half fine)."),
    data: Optional[Path] = typer.Option(None, "--data", help="VOC root (default: the config's data.root)."),
    budget_seconds: Optional[float] = typer.Option(None, "--budget-seconds", min=0,
                                                   help="Wall-clock budget of the whole search."),
    space: Optional[list[str]] = typer.Option(None, "--space", help="key=LOW:HIGH[:log] (repeatable; default: "
                                              "train.lr and train.weight_decay, log-uniform)."),
    set_: Optional[list[str]] = typer.Option(None, "--set", help="Override for every trial, e.g. "
                                             "train.iterations=300 (repeatable)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the search (the same seed draws the same trials)."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="Torch CPU threads (default: all cores)."),
) -> None:
    """Random search (log-uniform) of training hyperparameters, scored by validation mAP; resumable.

    Re-running the same command continues: finished trials are not rerun. Under torchrun the trials are
    shared out across ranks.

    Example: detladder tune --config configs/ladder/faster_rcnn.yaml --data runs/synth --trials 8
    --set train.iterations=300 --out runs/tune
    """
    from detect.tuning import tune

    result = tune(config, out, trials=trials, data_root=data, budget_seconds=budget_seconds, space=list(space or []),
                  overrides=list(set_ or []), seed=seed, threads=threads, say=print, note=_note)
    if result is not None:
        print(result.summary())
