"""``detladder train``: train one rung from a config (one call into ``detect.train.train``)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    """Add the top-level ``train`` command."""
    app.command("train")(train_command)


def train_command(
    config: Path = typer.Option(..., "--config", help="YAML config (e.g. configs/ladder/faster_rcnn.yaml)."),
    out: Path = typer.Option(..., "--out", help="Run directory: checkpoint.pt, model.pt, log.jsonl."),
    data: Optional[Path] = typer.Option(None, "--data", help="VOC root to train on (default: the config's data.root)."),
    set_: Optional[list[str]] = typer.Option(None, "--set", help="Config override key=value (repeatable)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from RUN/checkpoint.pt (with the config the run "
                                "was made with; keys that differ are listed and refused)."),
    allow_config_change: bool = typer.Option(False, "--allow-config-change", help="With --resume: continue even "
                                             "though the config differs from the run's (the keys are listed)."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:1, ..."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="Torch CPU threads (default: all cores; "
                                          "on a machine shared with other work, 1 is often faster)."),
) -> None:
    """Train a detector; under `torchrun --nproc_per_node=K` the same command trains data-parallel.

    Example: detladder train --config configs/ladder/faster_rcnn.yaml --data runs/synth --out runs/frcnn
    --set train.iterations=300
    """
    import sys

    from detect.build import rung_label
    from detect.cli.common import progress_enabled
    from detect.config import load_config
    from detect.train import train

    cfg = load_config(config, list(set_ or []))
    if allow_config_change and not resume:
        raise typer.BadParameter("--allow-config-change goes with --resume")
    result = train(cfg, out, resume=resume, data_root=data, device=device, progress=progress_enabled(),
                   say=lambda message: print(f"detladder: {message}", file=sys.stderr), threads=threads,
                   allow_config_change=allow_config_change)
    if result.model_path is not None:
        val = f", validation mAP {result.val_map:.4f}" if result.val_map is not None else ""
        print(f"trained {rung_label(cfg.model)} for {result.iterations} iterations in {result.train_seconds:.1f} s "
              f"(final loss {result.final_losses.get('loss', float('nan')):.4f}{val}); weights: {result.model_path}")
