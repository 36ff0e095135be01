"""From ``config.model.rung`` to a detector: one plain dict, no registration side effects.

``RUNGS[name].build(config, num_classes) -> Detector`` and
``RUNGS[name].proposal_method`` names the precomputed proposals the rung needs
("selective_search", "sliding_window") or None when it makes its own (RPN,
whole image). A reader jumps from a config's ``rung`` straight to the builder.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from detect.detectors.base import Detector
from detect.detectors.crop_head import build_rcnn
from detect.detectors.fast_rcnn import build_fast_rcnn
from detect.detectors.faster_rcnn import build_faster_rcnn
from detect.detectors.regression import build_regression
from detect.detectors.sliding_window import build_sliding_window
from detect.detectors.svm import fit_rcnn_svms


@dataclass(frozen=True)
class RungSpec:
    build: Callable[..., Detector]  # (config, num_classes) -> Detector
    proposal_method: str | None = None
    # (model, config, voc, proposals by image id) -> None: a stage after the SGD iterations
    # (R-CNN's per-class SVMs, issue 6); called by detect.train before model.pt is written.
    post_train: Callable[..., None] | None = None


RUNGS: dict[str, RungSpec] = {
    "faster_rcnn": RungSpec(build_faster_rcnn, None),
    # issue 6: the lower rungs. Fast R-CNN is Faster R-CNN with the RPN swapped for
    # precomputed Selective Search boxes; sliding windows are made inside the model.
    "regression": RungSpec(build_regression, None),
    "sliding_window": RungSpec(build_sliding_window, None),
    "rcnn": RungSpec(build_rcnn, "selective_search", post_train=fit_rcnn_svms),
    "fast_rcnn": RungSpec(build_fast_rcnn, "selective_search"),
}


def build_detector(config, num_classes: int) -> Detector:
    """The detector ``config.model.rung`` names, for ``num_classes`` object classes.

    Deterministic: the same config (same ``seed``) gives the same initial weights.
    """
    from eval.errors import InputError

    spec = RUNGS.get(config.model.rung)
    if spec is None:
        raise InputError(None, f"model.rung: {config.model.rung!r} is not built yet (available: {', '.join(sorted(RUNGS))})")
    # Heads draw their initial weights from the global RNG: seed it, and leave the caller's stream alone.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        return spec.build(config, num_classes)


def proposal_method(config) -> str | None:
    """Which precomputed proposals ``config``'s rung needs (None: it makes its own)."""
    spec = RUNGS.get(config.model.rung)
    return spec.proposal_method if spec is not None else None
