"""``detladder demo``: the whole ladder on the embedded synthetic dataset, one command.

    OUT/data/      the synthetic VOC dataset (detect.data.synth), reused when already complete
    OUT/compare/   compare()'s runs, metrics.json, report.html, report.md, figures/

Needs no data, no weights and no network. On a 2-core CPU it is meant to
finish in at most 10 minutes: the per-rung training budgets live in
configs/ladder/*.yaml; this module only chooses the dataset size and the
comparison's demo knobs. With a GPU, ``compare`` uses it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from eval.errors import InputError

#: The rungs in ladder order (the order of the report's rows).
LADDER = ("regression", "sliding_window", "rcnn", "fast_rcnn", "faster_rcnn")

# The default dataset: what `detladder data synth` makes without options.
DEMO_TRAIN_IMAGES = 500
DEMO_TEST_IMAGES = 100
DEMO_SEED = 0
DEMO_IMAGE_SIZE = 128

# `demo --quick`: fewer images and every rung's schedule scaled down together, so the ladder's order
# and the report's sections stay while the run fits in a couple of minutes.
QUICK_TRAIN_IMAGES = 120
QUICK_TEST_IMAGES = 30
QUICK_SCHEDULE_SCALE = 0.25


def ladder_configs(config_dir: str | os.PathLike | None = None) -> list[Path]:
    """configs/ladder/<rung>.yaml for the five rungs, in ladder order (repository checkout)."""
    config_dir = Path(config_dir) if config_dir else Path(__file__).resolve().parents[1] / "configs" / "ladder"
    paths = [config_dir / f"{rung}.yaml" for rung in LADDER]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise InputError(config_dir, f"ladder configs missing: {', '.join(missing)} "
                                     "(the demo runs from a checkout of the repository)")
    return paths


def ensure_dataset(root: Path, train: int, test: int, seed: int, image_size: int, log=None) -> Path:
    """Synthesise the dataset unless ``root`` already holds one made with these parameters."""
    from detect.data.synth import make_synthetic_voc
    from eval.files import atomic_write_json

    stamp = root / "demo-dataset.json"
    wanted = {"train": train, "test": test, "seed": seed, "image_size": image_size}
    try:
        if json.loads(stamp.read_text()) == wanted and (root / "ImageSets" / "Main" / "test.txt").is_file():
            return root
    except (OSError, ValueError):
        pass
    if log:
        log(f"synthesising {train} + {test} images -> {root}")
    # The stamp says the demo made this folder, so other parameters may replace it; a user's folder is refused.
    make_synthetic_voc(root, train=train, test=test, seed=seed, image_size=image_size, force=stamp.is_file())
    atomic_write_json(stamp, wanted)
    return root


def run_demo(out: str | os.PathLike = "runs/demo", *, device: str | None = None,
             train_images: int = DEMO_TRAIN_IMAGES, test_images: int = DEMO_TEST_IMAGES,
             config_dir: str | os.PathLike | None = None, overrides=(), log=None,
             progress: bool = False, quick: bool = False, threads: int | None = None,
             jobs: int | None = None) -> tuple[dict, Path]:
    """Synthesise the data, compare the five ladder configs; returns (metrics, compare directory).

    ``quick`` uses :data:`QUICK_TRAIN_IMAGES` + :data:`QUICK_TEST_IMAGES` images and scales every
    schedule by :data:`QUICK_SCHEDULE_SCALE`; ``threads`` and ``jobs`` go to :func:`detect.compare.compare`
    (``jobs`` default: two rungs trained at once where there are two cores; ``compare`` ignores it on a GPU).
    Re-running continues where an interrupted demo stopped (compare resumes).
    """
    from detect.compare import _stderr, compare

    log = log or _stderr
    out = Path(out)
    configs = ladder_configs(config_dir)
    if quick:
        train_images, test_images = min(train_images, QUICK_TRAIN_IMAGES), min(test_images, QUICK_TEST_IMAGES)
    data = ensure_dataset(out / "data", train_images, test_images, DEMO_SEED, DEMO_IMAGE_SIZE, log)
    compare_dir = out / "compare"
    metrics = compare(data, configs, compare_dir, split="test", device=device, overrides=overrides, log=log,
                      progress=progress, threads=threads, schedule_scale=QUICK_SCHEDULE_SCALE if quick else 1.0,
                      jobs=jobs if jobs is not None else min(2, os.cpu_count() or 1))
    return metrics, compare_dir
