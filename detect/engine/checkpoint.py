"""Run files: ``checkpoint.pt`` (full training state) and ``model.pt`` (what detect/eval load).

Both are written to a temporary file and renamed into place, and both are read
with ``torch.load(weights_only=True)``: a file that would need pickle to run
code (a malicious or foreign checkpoint) is refused with one line, and its
payload never executes.

    checkpoint.pt = {"model", "optimizer", "scheduler", "scaler", "iteration",
                     "config", "class_names", "rng": {"torch"}}
    model.pt      = {"state_dict", "config" (plain dict), "class_names", "rung"}
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import torch

from eval.errors import InputError
from eval.files import atomic_write_bytes


def save_atomic(payload: dict, path: str | os.PathLike) -> Path:
    """``torch.save`` into memory, then write-temp-and-rename (a crash leaves the old file intact)."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return atomic_write_bytes(path, buffer.getvalue())


def load_safely(path: str | os.PathLike, map_location="cpu") -> object:
    """``torch.load(path, weights_only=True)``; unreadable or code-carrying files raise ``InputError``."""
    path = Path(path)
    if not path.is_file():
        from detect.backbones.weights import torchvision_weights_hint  # e.g. torchvision's COCO detector file

        raise InputError(path, "checkpoint file not found" + torchvision_weights_hint(path))
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - every failure here means "not a safe checkpoint"
        text = str(exc)
        if "weights_only" in text or "Unsupported global" in text or "GLOBAL" in text:
            reason = "it holds pickled objects that would run code; only plain tensors and containers are accepted"
        else:
            reason = f"not a readable PyTorch checkpoint ({exc.__class__.__name__})"
        raise InputError(path, f"refused to load checkpoint: {reason}") from None


def model_payload(state_dict: dict, config_dict: dict, class_names: list[str], rung: str) -> dict:
    return {"state_dict": state_dict, "config": config_dict, "class_names": list(class_names), "rung": rung}
