"""Crash-safe file writing: write to a temporary name beside the target, then rename."""

from __future__ import annotations

import json
import os
from pathlib import Path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` so that a reader sees the old file or the new one, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, payload: object) -> Path:
    return atomic_write_text(path, json.dumps(payload, indent=2, allow_nan=False) + "\n")


def check_writable(path: str | os.PathLike, *, directory: bool, option: str = "--out") -> Path:
    """Raise ``InputError`` now, before any work, if the output ``path`` could not be written later.

    ``directory=True``: ``path`` is a folder to write into; otherwise a file whose folder
    must take a new file (files are written to a temporary name and renamed, so only the
    folder's permission matters). A folder that does not exist yet is judged by its
    nearest existing parent, which is left as it was. ``option`` names the option in the message.
    """
    from eval.errors import InputError

    path = Path(path)
    if directory and path.exists() and not path.is_dir():
        raise InputError(path, f"exists and is not a folder; choose another {option}")
    if not directory and path.is_dir():
        raise InputError(path, f"is a folder, not a file name; choose another {option}")
    folder = path if directory else path.parent
    probe_dir = folder.absolute()
    while not probe_dir.exists() and probe_dir != probe_dir.parent:
        probe_dir = probe_dir.parent
    if not probe_dir.is_dir():
        raise InputError(path, f"cannot be created: {probe_dir} is a file, not a folder; choose another {option}")
    probe = probe_dir / f".detladder-write-test-{os.getpid()}"
    try:
        fd = os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return path  # a stale probe of this pid: the folder took a file once; writing works
    except OSError as exc:
        where = "" if probe_dir == folder.absolute() else f" (in {probe_dir})"
        raise InputError(path, f"cannot write here{where}: {exc.strerror or exc.__class__.__name__}; "
                               f"choose another {option}") from None
    os.close(fd)
    os.unlink(probe)
    return path
