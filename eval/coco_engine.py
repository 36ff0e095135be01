"""Which compiled loops the COCO evaluator runs: C through ctypes (``eval.coco_native``) or numba.

Both give the same numbers; C starts ~0.3 s sooner (no numba import) and is
the default wherever a C compiler has built it once. ``kernels("numba")``
forces the numba kernels (``eval.coco_kernels`` / ``eval.coco_json``), and
``kernels("native")`` insists on C (RuntimeError without a compiler); tests
run both against pycocotools.

``read_plain_results`` is the results-JSON fast path on top of either scanner.
"""

from __future__ import annotations

import os
import threading

import numpy as np

ENGINES = ("native", "numba")


class NumbaKernels:
    """The numba kernels behind the same methods as ``eval.coco_native.NativeKernels``."""

    threads = False  # match_pairs and accumulate take everything in one call

    def __init__(self):
        from eval import coco_json, coco_kernels

        self._json, self._k = coco_json, coco_kernels

    def scan(self, data: bytes):
        b = np.frombuffer(data, np.uint8)
        capacity = data.count(b"{")
        ids = np.empty((capacity, 2), np.int64)
        values = np.empty((capacity, 5))
        hard = np.empty((5 * capacity, 3), np.int64)
        rows, n_hard = self._json.scan(b, ids, values, hard)
        return None if rows < 0 else (ids[:rows], values[:rows], hard[:n_hard])

    def stable_argsort_int(self, keys, num_keys):
        return self._k.stable_argsort_int(keys, num_keys)

    def argsort_descending(self, scores):
        return np.argsort(-scores, kind="stable")

    def sort_and_cut(self, perm, image, label, scores, num_images, num_classes, max_det):
        """Stable sorts, least significant key first: (order), image, -score, then the pair by counting."""
        sort_int = self._k.stable_argsort_int
        key = label * num_images + image
        idx = perm[sort_int(image[perm], num_images)]
        by_score = idx[np.argsort(-scores[idx], kind="stable")]  # (-score, image, order)
        idx = by_score[sort_int(key[by_score], num_classes * num_images)]
        key = key[idx]
        new_pair = np.ones(len(key), bool)
        new_pair[1:] = key[1:] != key[:-1]
        first = np.maximum.accumulate(np.where(new_pair, np.arange(len(key)), 0))
        rank = np.arange(len(key)) - first
        keep = rank < max_det
        idx, rank = idx[keep], rank[keep]
        row = np.full(len(label), -1, np.int64)  # each detection's row among the kept ones
        row[idx] = np.arange(len(idx))
        kept_by_score = row[by_score]
        kept_by_score = kept_by_score[kept_by_score >= 0]
        return idx, rank, kept_by_score[sort_int(label[idx[kept_by_score]], num_classes)]

    def match_pairs(self, *args, p0: int = 0, p1: int | None = None):
        det_start = args[0]
        p1 = len(det_start) - 1 if p1 is None else p1
        if (p0, p1) != (0, len(det_start) - 1):
            raise ValueError("the numba kernel matches all pairs at once")
        self._k.match_pairs(*args)

    def accumulate(self, *args, k0: int = 0, k1: int | None = None):
        if k0 != 0 or (k1 is not None and k1 != len(args[0]) - 1):
            raise ValueError("the numba kernel accumulates all classes at once")
        self._k.accumulate(*args)


def kernels(engine: str | None = None):
    """The loops to run: C when it loads (``engine`` None or "native"), else numba; a kernels object as is."""
    if hasattr(engine, "match_pairs"):
        return engine
    if engine not in (None, *ENGINES):
        raise ValueError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    if engine != "numba":
        from eval.coco_native import load

        native = load()
        if native is not None:
            return native
        if engine == "native":
            raise RuntimeError("no C compiler built eval/coco_native.c here (set CC, or use the numba engine)")
    return NumbaKernels()


def read_plain_results(data: bytes, engine=None):
    """``(image ids (n,) int64, category ids (n,) int64, xywh (n, 4) float64, scores (n,) float64)`` or None.

    None when the file is not in the plain form (``eval.coco_json`` says
    which form; anything else goes through orjson). ``engine``: a name for
    ``kernels`` or a kernels object.
    """
    rows = read_plain_rows(data, engine)
    if rows is None:
        return None
    ids, values = rows
    return ids[:, 0], ids[:, 1], values[:, :4], values[:, 4]


def read_plain_rows(data: bytes, engine=None):
    """``read_plain_results`` as the scanner's rows: ``(ids (n, 2) int64, values (n, 5) float64)`` or None.

    ids: image id, category id; values: x, y, w, h, score; both C-contiguous.
    """
    scanned = kernels(engine).scan(data)
    if scanned is None:
        return None
    ids, values, hard = scanned
    if len(hard):
        tokens = np.array([data[s:e] for _, s, e in hard.tolist()], dtype="S").astype(np.float64)
        if not np.isfinite(tokens).all():  # 1e400: the general path names it
            return None
        values.reshape(-1)[hard[:, 0]] = tokens
    return ids, values


def available_cpus() -> int:
    """CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def run_threads(call, items) -> None:
    """``call(item)`` for every item, each in its own thread (one item: in this thread); re-raises the first error."""
    items = list(items)
    if len(items) == 1:
        call(items[0])
        return
    errors: list[BaseException] = []

    def run(item) -> None:
        try:
            call(item)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(item,)) for item in items]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def in_chunks(call, bounds: np.ndarray, k, max_workers: int = 8) -> None:
    """``call(lo, hi)`` over ranges of ``bounds`` (cumulative work, e.g. detections per pair) in threads.

    The C kernels release the GIL, so each thread takes about an equal share
    of the rows on its own core; the numba ones (``k.threads`` False) and a
    single-core machine get one call over everything.
    """
    n = len(bounds) - 1
    workers = min(available_cpus(), max_workers, n) if getattr(k, "threads", False) else 1
    if workers <= 1 or bounds[-1] - bounds[0] < 10_000:
        call(0, n)
        return
    cuts = np.searchsorted(bounds, np.linspace(bounds[0], bounds[-1], workers + 1)[1:-1]).tolist()
    edges = sorted(set([0, *cuts, n]))
    run_threads(lambda r: call(*r), list(zip(edges[:-1], edges[1:])))
