"""``detladder check``: babysitting checks before a long training run (docs/babysitting.md).

    run_checks(config, out_dir) -> CheckReport
      initial loss (detect/check/initial_loss.py)   fresh model, a few real batches, no update
      overfit      (detect/check/overfit.py)        fresh model, a few images, mAP on them
      gradient     (detect/check/gradcheck.py)      float64 gradcheck of our operators
      lr sweep     (detect/check/lr_sweep.py)       fresh model, exponentially rising lr
    -> OUT/check.json and OUT/check.html (detect/check/page.py)

Every model is built by ``detect.build.build_detector`` from the same config (same
seed, so the same initial weights); budgets live in the config's ``check:`` section.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from detect.check.verdict import Verdict, worst
from eval.errors import InputError

@dataclass
class CheckReport:
    config_name: str
    rung: str
    verdicts: list[Verdict] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)

    @property
    def status(self) -> str:
        return worst(v.status for v in self.verdicts)

    def to_json(self) -> dict:
        return {"config": self.config_name, "rung": self.rung, "status": self.status,
                "checks": [v.to_json() for v in self.verdicts]}


def validate_check_config(chk, source=None) -> None:
    """What the per-key ranges in detect/config.py cannot say: the sweep's range must rise (InputError)."""
    if not chk.sweep_lr_min < chk.sweep_lr_max:
        raise InputError(source, f"check.sweep_lr_min ({chk.sweep_lr_min:g}) must be below check.sweep_lr_max "
                                 f"({chk.sweep_lr_max:g})")


def _fresh_model(config, num_classes: int):
    from detect.build import build_detector
    from detect.check.initial_loss import scale_classifiers

    model = build_detector(config, num_classes).train()
    scale_classifiers(model, config.check.init_scale)
    return model


def run_checks(config, out_dir, *, data_root=None, config_name: str = "", say: Callable[[str], None] | None = None,
               threads: int | None = None) -> CheckReport:
    """Run every check on ``config``; ``say`` receives each verdict's line as it comes. Writes OUT/check.*."""
    from detect.build import rung_label
    from detect.engine.threads import torch_threads

    config = copy.deepcopy(config)
    if data_root is not None:
        config.data.root = str(data_root)
    validate_check_config(config.check, config_name or None)
    say = say or (lambda line: None)
    report = CheckReport(config_name, rung_label(config.model))
    with torch_threads(threads):
        for verdict in _verdicts(config):
            report.verdicts.append(verdict)
            say(verdict.line())
    report.files = _write(report, Path(out_dir))
    return report


def _verdicts(config):
    """The checks in order, each yielded as soon as it is done."""
    from detect.check.gradcheck import check_gradients
    from detect.check.initial_loss import check_initial_loss
    from detect.check.lr_sweep import check_lr_sweep
    from detect.check.overfit import boxes_per_image, check_overfit, covered
    from detect.check.samples import load_samples

    chk = config.check
    bs = config.train.batch_size
    samples = load_samples(config, max(chk.batches * bs, chk.overfit_images), bs)
    n = samples.num_classes
    yield check_initial_loss(_fresh_model(config, n), samples, batches=chk.batches, tolerance=chk.init_tolerance,
                             seed=config.seed)
    model = _fresh_model(config, n)
    cap = boxes_per_image(model)
    if cap is None:
        few, skipped = covered(model, samples, chk.overfit_images)
    else:
        few, skipped = load_samples(config, chk.overfit_images, bs, cap), 0
    yield check_overfit(model, config, few, cap, skipped)
    if chk.gradcheck:
        yield check_gradients()
    yield check_lr_sweep(_fresh_model(config, n), config, samples)


def _write(report: CheckReport, out: Path) -> list[Path]:
    from detect.check.page import render_page
    from eval.files import atomic_write_json, atomic_write_text

    out.mkdir(parents=True, exist_ok=True)
    return [atomic_write_json(out / "check.json", report.to_json()),
            atomic_write_text(out / "check.html", render_page(report.to_json()))]


__all__ = ["run_checks", "CheckReport", "Verdict", "validate_check_config"]
