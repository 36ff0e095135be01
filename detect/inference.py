"""Load a trained detector and run it on images: the library behind ``detect``, ``eval --config`` and ``compare``.

* :func:`load_detector` reads our ``model.pt`` (weights + config + class names),
  a ``checkpoint.pt``, or a raw torchvision Faster R-CNN state dict (with a config
  such as configs/coco/faster_rcnn_r50_fpn.yaml), always ``weights_only=True``. The detector is
  built without random init (the file fills every value) and its frozen batch norms run as one
  fused op each (``detect.backbones.frozen_norm``).
* :func:`run_detector` maps one batch of HxWx3 uint8 RGB arrays to per-image
  ``Detections`` (numpy; labels 0-based into the class list) and ``StageTimes``.
  Detectors that read precomputed proposals get them from
  ``detect.proposal_route.image_proposals`` (timed, counted as the proposal stage)
  unless the caller passes them.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from detect.backbones.frozen_norm import fuse_frozen_norms
from detect.build import build_detector
from detect.config import Config, apply_overrides, config_from_tree, config_to_dict, load_config
from detect.data.tensors import to_tensor
from detect.detectors.base import StageTimes
from detect.engine.checkpoint import load_safely
from eval.errors import InputError
from eval.types import Detections


def _state_and_meta(payload, path: Path) -> tuple[dict, dict | None, list[str] | None]:
    """(state dict, stored config dict or None, class names or None) of any accepted file layout."""
    if not isinstance(payload, dict):
        raise InputError(path, "not a detector checkpoint (expected a dict of weights)")
    if "state_dict" in payload:  # model.pt
        return payload["state_dict"], payload.get("config"), payload.get("class_names")
    if "model" in payload and "optimizer" in payload:  # checkpoint.pt
        return payload["model"], payload.get("config"), payload.get("class_names")
    if payload and all(isinstance(v, torch.Tensor) for v in payload.values()):  # a raw state dict
        return payload, None, None
    raise InputError(path, "not a detector checkpoint (no 'state_dict' and not a plain state dict)")


def resolve_config(config: Config | str | os.PathLike | None, stored: dict | None, overrides=()) -> Config:
    """The config to build with: the given one (file or object), else the one stored with the weights."""
    if isinstance(config, Config):
        if overrides:
            return config_from_tree(apply_overrides(config_to_dict(config), list(overrides), {}))
        return config
    if config is not None:
        return load_config(config, list(overrides))
    if stored is None:
        raise InputError(None, "these weights carry no config: pass --config")
    origins: dict = {}
    return config_from_tree(apply_overrides(stored, list(overrides), origins), origins)


def load_detector(weights: str | os.PathLike, config: Config | str | os.PathLike | None = None,
                  device: str | torch.device = "cpu", overrides=()) -> tuple[torch.nn.Module, Config, list[str]]:
    """(model in eval mode on ``device``, its config, its class names) from a weights file."""
    path = Path(weights)
    state, stored, class_names = _state_and_meta(load_safely(path), path)
    cfg = resolve_config(config, stored, overrides)
    names = class_names or cfg.classes
    if not names:
        raise InputError(path, "these weights carry no class names and the config has no 'classes' list")
    model = build_detector(cfg, len(names), init=False)  # every value comes from ``state`` (strict) next
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).split("\n")[1].strip() if "\n" in str(exc) else str(exc)
        raise InputError(path, f"weights do not fit the model the config describes ({first})") from None
    fuse_frozen_norms(model)  # one pass per frozen norm layer instead of two (detect.backbones.frozen_norm)
    return model.to(device).eval(), cfg, list(names)


def _to_numpy(det: dict) -> Detections:
    return {
        "boxes": det["boxes"].detach().cpu().double().numpy().reshape(-1, 4),
        "scores": det["scores"].detach().cpu().double().numpy().reshape(-1),
        "labels": det["labels"].detach().cpu().numpy().astype(np.int64).reshape(-1) - 1,  # 1..C -> 0-based
    }


def run_detector(model: torch.nn.Module, config: Config, images: list[np.ndarray], *,
                 proposals: list[np.ndarray] | None = None, proposal_seconds: list[float] | None = None,
                 score_thresh: float | None = None) -> tuple[list[Detections], list[StageTimes]]:
    """Detect objects in one batch of HxWx3 uint8 RGB ``images`` with an eval-mode ``model``.

    Returns per image ``Detections`` (boxes (D, 4) float64 original pixels, scores
    (D,), labels (D,) 0-based) and ``StageTimes`` (seconds). For detectors with
    precomputed proposals, ``proposals`` (per image (P, 4)) may be given with their
    ``proposal_seconds``; otherwise they are computed here and timed. ``score_thresh``
    (None: ``config.test.score_thresh``) keeps the detections scoring above it.
    Callers split their images into batches (``test.batch_size``); this runs one.
    """
    from detect.proposal_route import image_proposals

    if model.training:
        raise ValueError("run_detector needs a model in eval mode (call model.eval())")
    if not images:
        return [], []
    device = next(model.parameters()).device
    if proposals is None:
        proposals, proposal_seconds = image_proposals(config, images)
    tensors = [to_tensor(img).to(device) for img in images]
    props = None
    if proposals is not None:
        props = [torch.as_tensor(np.asarray(p, np.float32).reshape(-1, 4), device=device) for p in proposals]
    with torch.inference_mode():
        dets, stage = model.detect_with_timing(tensors, props, score_thresh=score_thresh)
    times = [StageTimes(proposals=stage.proposals + (proposal_seconds[k] if proposal_seconds is not None else 0.0),
                        network=stage.network) for k in range(len(dets))]
    return [_to_numpy(det) for det in dets], times
