"""Run files: ``checkpoint.pt`` (full training state) and ``model.pt`` (what detect/eval load).

Both are written to a temporary file and renamed into place, and both are read
with ``torch.load(weights_only=True)``: a file that would need pickle to run
code (a malicious or foreign checkpoint) is refused with one line, and its
payload never executes. A file that is no checkpoint at all (a JPEG, a YAML
config, a plain pickle) is named for what it is, from its first bytes, and never
reaches an unpickler.

    checkpoint.pt = {"model", "optimizer", "scheduler", "scaler", "iteration",
                     "config", "class_names", "rng": {"torch"}}
    model.pt      = {"state_dict", "config" (plain dict), "class_names", "rung"}
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import torch

from eval.errors import InputError
from eval.files import atomic_write_bytes


def save_atomic(payload: dict, path: str | os.PathLike) -> Path:
    """``torch.save`` into memory, then write-temp-and-rename (a crash leaves the old file intact)."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return atomic_write_bytes(path, buffer.getvalue())


# First bytes of files people pass as weights by mistake -> what to call them.
_MAGIC = (
    (b"\xff\xd8\xff", "a JPEG image"), (b"\x89PNG\r\n\x1a\n", "a PNG image"), (b"GIF8", "a GIF image"),
    (b"BM", "a BMP image"), (b"II*\x00", "a TIFF image"), (b"MM\x00*", "a TIFF image"),
    (b"%PDF", "a PDF document"), (b"\x1f\x8b", "a gzip archive"), (b"BZh", "a bzip2 archive"),
    (b"\xfd7zXZ\x00", "an xz archive"), (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"\x89HDF\r\n\x1a\n", "an HDF5 file"), (b"\x93NUMPY", "a NumPy .npy array"),
    (b"version https://git-lfs", "a Git LFS pointer"),
)
_ADVICE = {  # what to add after "it is <kind>, not a PyTorch checkpoint"
    "a Git LFS pointer": "; run `git lfs pull` to fetch the file itself",
    "a plain pickle file": "; plain pickles are never loaded, because unpickling can run code",
    "a safetensors file": "; detladder reads files that torch.save wrote",
}
_ZIP = b"PK\x03\x04"  # torch.save's format since PyTorch 1.6
_LEGACY_TORCH = b"\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19"  # the older format opens with a pickle of torch's magic number


def sniff(head: bytes) -> str | None:
    """What a file that cannot be a PyTorch checkpoint is, from its first bytes; None if it may be one."""
    if not head:
        return "an empty file"
    if head.startswith(_ZIP) or (head[:1] == b"\x80" and _LEGACY_TORCH in head[:32]):
        return None
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    if head[8:9] == b"{" and int.from_bytes(head[:8], "little") < 100_000_000:
        return "a safetensors file"
    if head[:1] == b"\x80" and len(head) > 1 and 2 <= head[1] <= 5:  # PROTO opcode: a pickle, but not torch's
        return "a plain pickle file"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:  # may also be a multi-byte character cut at byte 64: judge by what decodes
        text = head.decode("utf-8", errors="replace")
        if text.count("\ufffd") > 3:
            return "a file of an unknown binary format"
    return "a text file" if all(c.isprintable() or c.isspace() or c == "\ufffd" for c in text) else \
        "a file of an unknown binary format"


def load_safely(path: str | os.PathLike, map_location="cpu") -> object:
    """``torch.load(path, weights_only=True)``; unreadable, foreign or code-carrying files raise ``InputError``."""
    path = Path(path)
    if not path.is_file():
        from detect.backbones.weights import torchvision_weights_hint  # e.g. torchvision's COCO detector file

        raise InputError(path, "checkpoint file not found" + torchvision_weights_hint(path))
    try:
        with open(path, "rb") as fh:
            head = fh.read(64)
    except OSError as exc:
        raise InputError(path, f"cannot read checkpoint ({exc.strerror or exc.__class__.__name__})") from None
    kind = sniff(head)
    if kind is not None:
        raise InputError(path, f"refused to load checkpoint: it is {kind}, not a PyTorch checkpoint"
                               f"{_ADVICE.get(kind, '')}")
    try:
        with warnings.catch_warnings():  # torch's notes on pickle protocols would add lines before the refusal
            warnings.simplefilter("ignore")
            return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - every failure here means "not a safe checkpoint"
        text = str(exc)
        if "Unsupported global" in text or "GLOBAL" in text:
            reason = "it holds pickled objects that would run code; only plain tensors and containers are accepted"
        else:
            reason = f"not a readable PyTorch checkpoint ({exc.__class__.__name__})"
        raise InputError(path, f"refused to load checkpoint: {reason}") from None


def model_payload(state_dict: dict, config_dict: dict, class_names: list[str], rung: str) -> dict:
    return {"state_dict": state_dict, "config": config_dict, "class_names": list(class_names), "rung": rung}
