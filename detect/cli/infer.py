"""``detladder detect``: run a trained detector on image files and folders (one call into ``detect.image_files``)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    """Add the top-level ``detect`` command."""
    app.command("detect")(detect_command)


def detect_command(
    paths: list[Path] = typer.Argument(..., help="Image files and folders (searched recursively)."),
    weights: Path = typer.Option(..., "--weights", help="model.pt of a run (or a torchvision state dict with --config)."),
    out: Path = typer.Option(..., "--out", help="Folder for detections.json and annotated/ (the annotated copies)."),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML config (default: the one stored in model.pt)."),
    score_thresh: Optional[float] = typer.Option(None, "--score-thresh", help="Keep detections scoring at least this."),
    set_: Optional[list[str]] = typer.Option(None, "--set", help="Config override key=value (repeatable)."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:1, ..."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", min=1, help="Images per batch (default test.batch_size)."),
) -> None:
    """Detect objects; writes OUT/detections.json and one annotated copy per image under OUT/annotated/.

    Input images are never written over (a run that would is refused with exit 2), and annotated/ folders of
    earlier runs are not searched. Exit 1 if an image was unreadable; the others are still processed.

    Example: detladder detect --config configs/ladder/faster_rcnn.yaml --weights runs/frcnn/model.pt
    runs/synth/JPEGImages --out runs/detections --score-thresh 0.5
    """
    import sys

    from detect.cli.common import progress_enabled
    from detect.image_files import detect_files

    result = detect_files(
        paths, out, weights, config=config, score_thresh=score_thresh, overrides=list(set_ or []), device=device,
        batch_size=batch_size, progress=progress_enabled(),
        say=lambda message: print(f"detladder: error: {message}", file=sys.stderr),
    )
    print(f"{result.detections} detections in {result.images} images -> {result.json_path}; "
          f"annotated images in {result.image_dir}")
    if result.failed:
        print(f"detladder: error: {len(result.failed)} image(s) could not be read", file=sys.stderr)
        raise typer.Exit(1)
