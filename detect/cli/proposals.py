"""``detladder proposals run`` and ``detladder proposals eval``: region proposals on a VOC split."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from detect.cli.common import progress_enabled

app = typer.Typer(
    help=(
        "Region proposals (Selective Search, sliding windows): compute and cache them, "
        "measure their recall.\n\n"
        "Example: detladder proposals run --method selective_search --data runs/synth "
        "--split test --out runs/ss-cache"
    ),
    no_args_is_help=True,
)

METHOD_HELP = "selective_search or sliding_window."


def _floats(text: str, name: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise typer.BadParameter(f"{name}: expected comma-separated numbers, got {text!r}") from None
    if not values:
        raise typer.BadParameter(f"{name}: expected at least one number")
    return values


def _at_least(*checks) -> None:
    """``typer.BadParameter`` for the first ``(option, value, low)`` whose given value is below ``low``."""
    for name, value, low in checks:
        if value is not None and not value >= low:
            raise typer.BadParameter(f"{name} must be at least {low}, got {value}")


def _params(method: str, mode, max_side, min_size, seed, scales, ratios, stride) -> dict:
    """The method's keyword arguments the user gave; the rest take the method's own defaults.

    The defaults live once, in the proposal functions' signatures (filled in by
    ``proposals.cache.normalize_params``, the cache key of every caller).
    """
    if method == "selective_search":
        if mode is not None and mode not in ("fast", "quality"):
            raise typer.BadParameter(f"--mode must be fast or quality, not {mode!r}")
        given = {"mode": mode, "seed": seed, "max_side": max_side, "min_size": min_size}
        _at_least(("--seed", seed, 0), ("--max-side", max_side, 1), ("--min-size", min_size, 0))
        return {k: v for k, v in given.items() if v is not None}
    if method == "sliding_window":
        given = {"scales": _floats(scales, "--scales") if scales is not None else None,
                 "ratios": _floats(ratios, "--ratios") if ratios is not None else None, "stride": stride}
        for name, values in (("--scales", given["scales"]), ("--ratios", given["ratios"]), ("--stride", [stride])):
            if any(v is not None and not 0 < v < float("inf") for v in values or []):
                raise typer.BadParameter(f"{name}: every value must be a finite number > 0, got {values}")
        return {k: v for k, v in given.items() if v is not None}
    raise typer.BadParameter(f"--method must be selective_search or sliding_window, not {method!r}")


def _dataset_proposals(data: Path, split: str, cache: Path, method: str, params: dict, workers: int):
    """(dataset, ProposalSet) for a split; unusable dataset entries are reported and skipped."""
    from detect.data.voc import VOCDataset
    from detect.proposal_route import cached_proposals

    dataset = VOCDataset(data, split, on_error="skip")
    if dataset.problems:
        first = dataset.problems[0]
        sys.stderr.write(f"detladder: skipped {len(dataset.problems)} unusable image(s); first: {first}\n")
    items = [(ann.image_id, dataset.image_path(i)) for i, ann in enumerate(dataset.annotations)]
    result = cached_proposals(cache, method, params, items, workers=workers, progress=progress_enabled())
    for problem in result.problems:
        sys.stderr.write(f"detladder: warning: {problem}\n")
    return dataset, result


_METHOD = typer.Option(..., "--method", help=METHOD_HELP)
_MODE = typer.Option(None, "--mode", help="Selective Search setting of the paper: fast (default) or quality.")
_DATA = typer.Option(..., "--data", help="VOC root (Annotations/, JPEGImages/, ImageSets/Main/).")
_SPLIT = typer.Option(..., "--split", help="ImageSets/Main/<split>.txt to run on.")
_WORKERS = typer.Option(2, "--workers", min=1, help="Processes, one image each at a time.")
_MAX_SIDE = typer.Option(None, "--max-side", help="Selective Search: segment a copy shrunk to this longer side.")
_MIN_SIZE = typer.Option(None, "--min-size", help="Selective Search: drop boxes narrower/shorter than this (px).")
_SEED = typer.Option(None, "--seed", help="Selective Search: seed of the ranking's random numbers (default 0).")
_SCALES = typer.Option(None, "--scales", help="Sliding windows: sqrt(area) in pixels, comma-separated (default 32,64,96).")
_RATIOS = typer.Option(None, "--ratios", help="Sliding windows: height/width ratios, comma-separated (default 0.5,1,2).")
_STRIDE = typer.Option(None, "--stride", help="Sliding windows: grid step in pixels (default 16).")


@app.command("run")
def run(
    method: str = _METHOD, mode: Optional[str] = _MODE, data: Path = _DATA, split: str = _SPLIT,
    out: Path = typer.Option(..., "--out", help="Cache directory (one file per image; resumable)."),
    workers: int = _WORKERS, max_side: Optional[int] = _MAX_SIDE, min_size: Optional[float] = _MIN_SIZE,
    seed: Optional[int] = _SEED,
    scales: Optional[str] = _SCALES, ratios: Optional[str] = _RATIOS, stride: Optional[float] = _STRIDE,
) -> None:
    """Compute proposals for every image of a split into a cache (finished images are skipped).

    Example: detladder proposals run --method selective_search --mode fast --data runs/synth --split test --out runs/ss-cache
    """
    import numpy as np

    from eval.files import check_writable

    params = _params(method, mode, max_side, min_size, seed, scales, ratios, stride)
    check_writable(out, directory=True)
    _, result = _dataset_proposals(data, split, out, method, params, workers)
    n = len(result.boxes)
    secs = list(result.seconds.values())
    boxes = np.mean([len(b) for b in result.boxes.values()]) if n else 0.0
    print(
        f"{method}: {n} images ({result.computed} computed, {result.reused} from cache), "
        f"{boxes:.0f} boxes/image, median {np.median(secs) if secs else 0:.3f} s/image -> {out}"
    )


@app.command("eval")
def evaluate(
    method: str = _METHOD, mode: Optional[str] = _MODE, data: Path = _DATA, split: str = _SPLIT,
    json_out: Path = typer.Option(..., "--json", help="Where to write the recall/MABO JSON."),
    cache: Path = typer.Option(None, "--cache", help="Proposal cache to use and fill (default: a temporary one)."),
    plot: Path = typer.Option(None, "--plot", help="Also draw recall against the number of boxes (PNG)."),
    workers: int = _WORKERS, max_side: Optional[int] = _MAX_SIDE, min_size: Optional[float] = _MIN_SIZE,
    seed: Optional[int] = _SEED,
    scales: Optional[str] = _SCALES, ratios: Optional[str] = _RATIOS, stride: Optional[float] = _STRIDE,
) -> None:
    """Recall at IoU 0.5/0.7 for the top 10..2000/all boxes, ABO per class, MABO, boxes and seconds per image.

    Example: detladder proposals eval --method selective_search --data runs/synth --split test --json runs/ss-recall.json
    """
    import tempfile

    import numpy as np

    from eval.files import atomic_write_json, check_writable
    from eval.proposal_recall import plot_recall_vs_n, proposal_recall

    params = _params(method, mode, max_side, min_size, seed, scales, ratios, stride)
    check_writable(json_out, directory=False, option="--json")  # before the work, not after
    if cache is not None:
        check_writable(cache, directory=True, option="--cache")
    if plot is not None:
        check_writable(plot, directory=False, option="--plot")
    with tempfile.TemporaryDirectory(prefix="detladder-proposals-") as tmp:
        dataset, result = _dataset_proposals(data, split, cache or Path(tmp), method, params, workers)
    anns = dataset.annotations
    secs = [result.seconds[a.image_id] for a in anns]
    recall = proposal_recall(
        [a.boxes for a in anns], [a.labels for a in anns], [result.boxes[a.image_id] for a in anns],
        dataset.class_names, difficult=[a.difficult for a in anns],
        seconds_per_image=float(np.median(secs)) if secs else None,
    )
    payload = {"method": method, "params": result.params, "split": split, **recall.to_json()}
    atomic_write_json(json_out, payload)
    if plot is not None:
        plot_recall_vs_n({method: recall}, plot)

    def num(value):  # None when the split has no ground truth
        return "n/a" if value is None else f"{value:.3f}"

    plotted = f"; plot: {plot}" if plot is not None else ""
    print(f"{method}: recall@0.5 {num(recall.recall[0.5]['all'])}, MABO {num(recall.mabo)}, "
          f"{recall.boxes_per_image:.0f} boxes/image -> {json_out}{plotted}")


def register(root) -> None:
    """Add the ``proposals`` group to the root app."""
    root.add_typer(app, name="proposals")
