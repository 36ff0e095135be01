"""The proposal cache: one file per image, keyed by the image's content and the method's parameters.

Layout of a cache directory::

    CACHE/params.json          {"format", "method", "params"}: what every entry was made with
    CACHE/<image_id>.npz       boxes (N, 4) float32, seconds () float64, image_sha256 (str)

* A directory made with other parameters is refused (``InputError`` naming the
  parameter that differs), so a stale cache is never used silently.
* An entry whose image file changed since (different SHA-256 of its bytes) is
  stale: it is recomputed (or refused with ``compute=False``).
* Entries are written to a temporary file and renamed (``eval.files``), one per
  image as soon as it is done, so a killed run resumes where it stopped.
* A corrupt entry (unreadable archive, missing keys, wrong shape) is reported in
  ``ProposalSet.problems`` and recomputed.

Images are decoded by :func:`proposals.images.load_image`, the loader training and ``detect`` use, so the
cached boxes live in the frame (EXIF orientation applied) and on the pixels the detector sees.
"""

from __future__ import annotations

import hashlib
import inspect
import io
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_all_start_methods, get_context
from pathlib import Path

import numpy as np

from eval.errors import InputError
from eval.files import atomic_write_bytes, atomic_write_json
from proposals.images import load_image

METHODS = ("selective_search", "sliding_window")
CACHE_FORMAT = 1
PARAMS_FILE = "params.json"


@dataclass
class ProposalSet:
    """Proposals of a list of images. ``boxes[id]`` (N, 4) float32; ``seconds[id]`` compute time."""

    method: str
    params: dict
    boxes: dict[str, np.ndarray] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    computed: int = 0  # entries computed in this call
    reused: int = 0  # entries read from the cache
    problems: list[str] = field(default_factory=list)  # corrupt/stale entries that were replaced


def _method_function(method: str):
    if method == "selective_search":
        from proposals.selective_search import selective_search

        return selective_search
    if method == "sliding_window":
        from proposals.sliding_window import sliding_windows

        return sliding_windows
    raise ValueError(f"unknown proposal method {method!r}; choose from {METHODS}")


def normalize_params(method: str, params: dict | None) -> dict:
    """The method's keyword arguments with defaults filled in, JSON-plain (tuples -> lists).

    Two spellings of the same call give the same dict, so the cache key depends on
    what is computed, not on how it was asked for. Unknown names raise ValueError.
    """
    sig = inspect.signature(_method_function(method))
    skip = {"image", "height", "width"}
    defaults = {
        name: p.default for name, p in sig.parameters.items()
        if name not in skip and p.default is not inspect.Parameter.empty
    }
    unknown = sorted(set(params or {}) - set(defaults))
    if unknown:
        raise ValueError(f"{method}: unknown parameter(s) {unknown}; known: {sorted(defaults)}")
    merged = {**defaults, **(params or {})}
    return json.loads(json.dumps(merged, sort_keys=True))


def compute_proposals(image: np.ndarray, method: str, params: dict | None = None):
    """Proposals for one (H, W, 3) uint8 RGB image -> (boxes (N, 4) float32, seconds float)."""
    fn = _method_function(method)
    kwargs = dict(params or {})
    start = time.perf_counter()
    if method == "sliding_window":
        boxes = fn(image.shape[0], image.shape[1], **kwargs)
    else:
        boxes = fn(image, **kwargs)
    return np.asarray(boxes, np.float32).reshape(-1, 4), time.perf_counter() - start


def _entry_path(cache_dir: Path, image_id: str) -> Path:
    # Image ids may contain path separators (nested datasets): keep each entry in the top directory.
    safe = str(image_id).replace("/", "__").replace("\\", "__")
    return cache_dir / f"{safe}.npz"


def _file_sha256(path: str | os.PathLike) -> str:
    try:
        with open(path, "rb") as fh:
            return hashlib.sha256(fh.read()).hexdigest()
    except OSError as exc:
        raise InputError(path, f"cannot read image file ({exc.strerror or exc})") from None


def _read_entry(path: Path, sha: str) -> tuple[np.ndarray, float] | str:
    """A valid cache entry -> (boxes, seconds); otherwise a string saying what is wrong."""
    try:
        with np.load(path, allow_pickle=False) as data:
            boxes = np.asarray(data["boxes"], np.float32)
            seconds = float(data["seconds"])
            stored_sha = str(data["image_sha256"])
    except Exception as exc:  # noqa: BLE001 - any failure to read means "corrupt"
        return f"corrupt cache entry ({exc.__class__.__name__}: {exc})"
    if boxes.ndim != 2 or boxes.shape[1] != 4 or not np.isfinite(boxes).all():
        return f"corrupt cache entry (boxes of shape {boxes.shape})"
    if stored_sha != sha:
        return "stale cache entry (the image file changed since it was computed)"
    return boxes, seconds


def _compute_entry(task: tuple) -> tuple:
    """Worker: decode one image, compute its proposals, write its cache entry (a bad image raises InputError)."""
    image_id, image_path, sha, method, params, entry = task
    image = load_image(image_path)
    boxes, seconds = compute_proposals(image, method, params)
    buf = io.BytesIO()
    np.savez(buf, boxes=boxes, seconds=np.float64(seconds), image_sha256=np.str_(sha))
    atomic_write_bytes(entry, buf.getvalue())
    return image_id, boxes, seconds


def _check_params_file(cache_dir: Path, method: str, params: dict) -> None:
    """Create CACHE/params.json, or refuse a cache made with another method or parameters."""
    path = cache_dir / PARAMS_FILE
    if not path.exists():
        cache_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(path, {"format": CACHE_FORMAT, "method": method, "params": params})
        return
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
        old_method, old_params = stored["method"], dict(stored["params"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(path, f"unreadable proposal cache description ({exc})") from None
    if old_method != method:
        raise InputError(cache_dir, f"proposal cache was made with method {old_method!r}, not "
                         f"{method!r}; use another directory or delete it")
    for name in sorted(set(old_params) | set(params)):
        if old_params.get(name) != params.get(name):
            raise InputError(
                cache_dir, f"proposal cache was made with {name}={old_params.get(name)!r}, not "
                f"{name}={params.get(name)!r}; use another directory or delete it")


def get_proposals(
    cache_dir: str | os.PathLike,
    method: str,
    params: dict | None,
    items: list[tuple[str, str | os.PathLike]],
    compute: bool = True,
    workers: int = 2,
    progress: bool = False,
) -> ProposalSet:
    """Proposals for every ``(image_id, image_path)`` in ``items``, from the cache or computed.

    Missing, stale and corrupt entries are computed in ``workers`` processes (1 =
    in this process) and written to the cache one by one. With ``compute=False``
    any entry that cannot be used raises ``InputError`` instead.
    """
    cache_dir = Path(cache_dir)
    params = normalize_params(method, params)
    _check_params_file(cache_dir, method, params)
    result = ProposalSet(method=method, params=params)
    todo = []
    for image_id, image_path in items:
        image_id, image_path = str(image_id), os.fspath(image_path)
        sha = _file_sha256(image_path)
        entry = _entry_path(cache_dir, image_id)
        got = _read_entry(entry, sha) if entry.exists() else "no cache entry"
        if isinstance(got, tuple):
            result.boxes[image_id], result.seconds[image_id] = got
            result.reused += 1
            continue
        if not compute:
            raise InputError(entry, f"{got} for image {image_id!r} ({image_path})")
        if entry.exists():
            result.problems.append(f"{entry}: {got}; recomputed")
        todo.append((image_id, image_path, sha, method, params, entry))
    for image_id, boxes, seconds in _run(todo, workers, progress):
        result.boxes[image_id], result.seconds[image_id] = boxes, seconds
        result.computed += 1
    return result


def _run(todo: list[tuple], workers: int, progress: bool):
    """Yield worker results in completion order, in-process or over a process pool."""
    if not todo:
        return
    bar, task = _progress_bar(len(todo), todo[0][3]) if progress else (None, None)
    try:
        if workers <= 1 or len(todo) == 1:
            results = map(_compute_entry, todo)
            for res in results:
                if bar is not None:
                    bar.advance(task)
                yield res
        else:
            import cv2

            # fork where there is one: no __main__ guard needed in user scripts, fast start.
            # But a child forked while OpenCV's thread pool runs inherits its locks held and
            # deadlocks in its first cv2 call (seen in training, where the parent had used
            # cv2 threads). So the parent stops that pool before forking (the children then
            # inherit one thread each: parallelism is across images) and restores it after.
            ctx = get_context("fork" if "fork" in get_all_start_methods() else "spawn")
            if any(item[3] == "selective_search" for item in todo):
                from proposals.felzenszwalb import warm_up

                warm_up()  # forked workers inherit the compiled segmentation kernel
            saved_threads = cv2.getNumThreads()
            cv2.setNumThreads(1)
            try:
                with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
                    for res in pool.map(_compute_entry, todo, chunksize=1):
                        if bar is not None:
                            bar.advance(task)
                        yield res
            finally:
                cv2.setNumThreads(saved_threads)
    finally:
        if bar is not None:
            bar.stop()


def _progress_bar(total: int, method: str):
    from rich.console import Console
    from rich.progress import Progress

    prog = Progress(console=Console(stderr=True), transient=False)
    task = prog.add_task(f"{method} proposals", total=total)
    prog.start()
    return prog, task
