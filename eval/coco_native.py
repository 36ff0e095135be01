"""The COCO evaluator's loops compiled from C (``eval/coco_native.c``) once, cached on disk, loaded with ctypes.

Why: importing numba costs ~0.3 s a process, more than the whole evaluation
of a 500,000-detection results file once the loops are compiled. The C file
is a line-for-line port of the numba kernels (``eval.coco_json``,
``eval.coco_kernels``), built with the system C compiler (``$CC``, else
``cc``) at ``-O2`` without fast-math and without FMA contraction, so every
number is the same IEEE double (tests/eval/test_coco_native.py compares both
with pycocotools). The library lands in ``eval/__pycache__`` (or, where that
is read-only, ``$XDG_CACHE_HOME/detladder``) under a name that hashes the
source, the flags and the machine, written to a temporary name and renamed,
so concurrent first runs are safe. Without a compiler ``load()`` returns
None and the callers use the numba kernels: slower to start, same numbers.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

SOURCE = Path(__file__).with_name("coco_native.c")
SOURCES = (SOURCE, SOURCE.with_name("coco_native_post.c"))  # compiled together into one library
FLAGS = ("-O2", "-std=c99", "-fPIC", "-shared", "-ffp-contract=off", "-fno-fast-math")
_I64, _PTR = ctypes.c_int64, ctypes.c_void_p
# the shortest result, {"image_id":1,"category_id":1,"bbox":[1,1,1,1],"score":1}: n bytes hold at most
# n // 57 + 1 of them (the scanner refuses more rows than it was given room for, never writes past it)
MIN_RESULT_BYTES = 57


def library_path(directory: Path | None = None) -> Path:
    """Where the compiled library of this source, these flags and this machine lives (or will)."""
    tag = hashlib.sha256(b"".join(p.read_bytes() for p in SOURCES) + repr((FLAGS, platform.machine(),
                                                                          sys.platform)).encode())
    name = f"coco_native-{tag.hexdigest()[:16]}.so"
    return (directory or _cache_dirs()[0]) / name


def _cache_dirs() -> list[Path]:
    user = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "detladder"
    return [SOURCE.parent / "__pycache__", user]


def build(directory: Path) -> Path:
    """Compile the C source into ``directory`` (atomically); CalledProcessError / OSError when that fails."""
    directory.mkdir(parents=True, exist_ok=True)
    target = library_path(directory)
    fd, tmp = tempfile.mkstemp(prefix=".coco_native-", suffix=".so", dir=directory)
    os.close(fd)
    try:
        compiler = os.environ.get("CC", "cc").split()
        subprocess.run([*compiler, *FLAGS, "-o", tmp, *map(str, SOURCES)], check=True, capture_output=True, timeout=120)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


@functools.lru_cache(maxsize=None)
def load() -> "NativeKernels | None":
    """The kernels, compiling them on first use; None when no C compiler works here (callers use numba).

    Also None when the C sources are not installed beside this module (a wheel built without package data).
    """
    if not all(p.is_file() for p in SOURCES):
        return None
    for directory in _cache_dirs():
        path = library_path(directory)
        if not path.exists():
            try:
                build(directory)
            except (OSError, subprocess.SubprocessError):
                continue
        try:
            return NativeKernels(ctypes.CDLL(str(path)))
        except OSError:
            continue
    return None


def _ptr(array: np.ndarray, dtype) -> int:
    """The data address of ``array``, which must already be C-contiguous of ``dtype`` (no silent copy)."""
    if array.dtype != dtype or not array.flags.c_contiguous:
        raise TypeError(f"expected a C-contiguous {np.dtype(dtype)} array, got {array.dtype} {array.shape}")
    return array.ctypes.data


class NativeKernels:
    """The functions of ``eval.coco_kernels`` / ``eval.coco_json`` with the same signatures, in C.

    ctypes releases the GIL during each call, so two threads can run two
    halves of the matching at once (``match_pairs(..., p0, p1)``).
    """

    threads = True  # ctypes releases the GIL: eval.coco_engine.in_chunks runs ranges side by side

    def __init__(self, lib: ctypes.CDLL):
        lib.scan_results.argtypes = [ctypes.c_char_p, _I64, _I64, _I64, _I64, _PTR, _PTR, _PTR, _PTR]
        lib.stable_argsort_int.argtypes = [_PTR, _I64, _I64, _PTR]
        lib.match_pairs.argtypes = [_I64, _I64] + [_PTR] * 9 + [_I64, _PTR, _PTR, _PTR, _I64, _PTR, _PTR]
        lib.accumulate.argtypes = [_I64, _I64] + [_PTR] * 5 + [_I64, _I64, _PTR, _I64, _PTR, _I64, _I64, _PTR, _PTR]
        lib.argsort_descending.argtypes = [_PTR, _PTR, _I64, _PTR]
        lib.sort_and_cut.argtypes = [_PTR, _I64, _PTR, _PTR, _PTR, _I64, _I64, _I64, _PTR, _PTR, _PTR]
        lib.finish_results.argtypes = [_I64, _PTR, _PTR, _PTR, _I64, _I64, _PTR, _I64, _I64] + [_PTR] * 5
        lib.pooled_order.argtypes = [_PTR, _PTR, _I64, _PTR, _PTR]
        for f in (lib.scan_results, lib.stable_argsort_int, lib.match_pairs, lib.accumulate, lib.argsort_descending,
                  lib.sort_and_cut, lib.finish_results, lib.pooled_order):
            f.restype = _I64
        self._lib = lib

    def scan(self, data: bytes, parts: int | None = None):
        """``eval.coco_json.read_plain_results``'s scan: (ids (n, 2), values (n, 5), hard (h, 3)) or None.

        Large files are cut at a '{' into ``parts`` (default: one per CPU, at
        most 4, ~8 MB each at least) scanned side by side in threads.
        """
        from eval.coco_engine import available_cpus, run_threads

        if parts is None:
            parts = max(1, min(available_cpus(), 4, len(data) // 8_000_000))
        cuts = [0]
        for k in range(1, parts):
            at = data.find(b"{", max(cuts[-1] + 1, len(data) * k // parts))
            if at > 0:
                cuts.append(at)
        cuts.append(len(data))
        out: list = [None] * (len(cuts) - 1)

        def part(p: int) -> None:
            begin, end = cuts[p], cuts[p + 1]
            capacity = (end - begin) // MIN_RESULT_BYTES + 1  # pages never written are never touched
            ids, values = np.empty((capacity, 2), np.int64), np.empty((capacity, 5))
            hard, n_hard = np.empty((5 * capacity, 3), np.int64), np.zeros(1, np.int64)
            rows = self._lib.scan_results(data, len(data), begin, end, capacity, ids.ctypes.data,
                                          values.ctypes.data, hard.ctypes.data, n_hard.ctypes.data)
            out[p] = None if rows < 0 else (ids[:rows], values[:rows], hard[:int(n_hard[0])])

        run_threads(part, range(len(out)))
        if any(o is None for o in out):
            return None
        if len(out) == 1:
            return out[0]
        offsets = np.cumsum([0] + [len(o[0]) for o in out[:-1]])
        hard = np.concatenate([o[2] + np.array([off * 5, 0, 0]) for o, off in zip(out, offsets)])
        return np.concatenate([o[0] for o in out]), np.concatenate([o[1] for o in out]), hard

    def finish_results(self, ids: np.ndarray, values: np.ndarray, img_table: np.ndarray, img_lo: int,
                       cat_table: np.ndarray, cat_lo: int):
        """Scanned rows ((n, 2) ids, (n, 5) values) -> ``(image, label, boxes, box_area, scores)``, or None.

        ``img_table[id - img_lo]`` is an image id's index (-1: not in the ground
        truth), likewise ``cat_table``. None when a row has ``w <= 0``, ``h <= 0``
        or an id outside the tables: the numpy path then words the message.
        """
        n = len(ids)
        image, label, boxes = np.empty(n, np.int64), np.empty(n, np.int64), np.empty((n, 4))
        area, scores = np.empty(n), np.empty(n)
        bad = self._lib.finish_results(n, _ptr(ids, np.int64), _ptr(values, np.float64), _ptr(img_table, np.int64),
                                       img_lo, len(img_table), _ptr(cat_table, np.int64), cat_lo, len(cat_table),
                                       image.ctypes.data, label.ctypes.data, boxes.ctypes.data, area.ctypes.data,
                                       scores.ctypes.data)
        return None if bad else (image, label, boxes, area, scores)

    def pooled_order(self, rows: np.ndarray, class_start: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """``rows[np.argsort(-scores[rows], kind="stable")]`` for rows listed class by class (``class_start``),
        each class already by descending score: a merge of the classes."""
        out = np.empty(len(rows), np.int64)
        if self._lib.pooled_order(_ptr(rows, np.int64), _ptr(class_start, np.int64), len(class_start) - 1,
                                  _ptr(scores, np.float64), out.ctypes.data) < 0:
            raise MemoryError("pooled_order")
        return out

    def stable_argsort_int(self, keys: np.ndarray, num_keys: int) -> np.ndarray:
        keys = np.ascontiguousarray(keys, np.int64)
        out = np.empty(len(keys), np.int64)
        if self._lib.stable_argsort_int(_ptr(keys, np.int64), len(keys), int(num_keys), out.ctypes.data):
            raise MemoryError("stable_argsort_int")
        return out

    def argsort_descending(self, scores: np.ndarray) -> np.ndarray:
        """``np.argsort(-scores, kind="stable")`` (radix sort; -0.0 ties with 0.0 as there)."""
        scores = np.ascontiguousarray(scores, np.float64)
        out = np.empty(len(scores), np.int64)
        perm = np.arange(len(scores), dtype=np.int64)
        if self._lib.argsort_descending(scores.ctypes.data, perm.ctypes.data, len(scores), out.ctypes.data):
            raise MemoryError("argsort_descending")
        return out

    def sort_and_cut(self, perm, image, label, scores, num_images: int, num_classes: int, max_det: int):
        """``eval.coco_ap._sort_and_cut``'s ``(idx, rank, by_class)`` from the detections in ``perm`` order."""
        image, label = np.ascontiguousarray(image, np.int64), np.ascontiguousarray(label, np.int64)
        scores, perm = np.ascontiguousarray(scores, np.float64), np.ascontiguousarray(perm, np.int64)
        n = len(perm)
        idx, rank, by_class = np.empty(n, np.int64), np.empty(n, np.int64), np.empty(n, np.int64)
        kept = self._lib.sort_and_cut(_ptr(perm, np.int64), n, _ptr(image, np.int64), _ptr(label, np.int64),
                                      _ptr(scores, np.float64), num_images, num_classes, max_det, idx.ctypes.data,
                                      rank.ctypes.data, by_class.ctypes.data)
        if kept < 0:
            raise MemoryError("sort_and_cut")
        return idx[:kept], rank[:kept], by_class[:kept]

    def match_pairs(self, det_start, det_boxes, det_area, gt_start, gt_count, gt_boxes, gt_area, gt_crowd,
                    gt_ignore, area_lo, area_hi, thr, tp_out, fp_out, p0: int = 0, p1: int | None = None) -> None:
        p1 = len(det_start) - 1 if p1 is None else p1
        status = self._lib.match_pairs(
            p0, p1, _ptr(det_start, np.int64), _ptr(det_boxes, np.float64), _ptr(det_area, np.float64),
            _ptr(gt_start, np.int64), _ptr(gt_count, np.int64), _ptr(gt_boxes, np.float64),
            _ptr(gt_area, np.float64), _ptr(gt_crowd, np.bool_), _ptr(gt_ignore, np.bool_), gt_ignore.shape[1],
            _ptr(area_lo, np.float64), _ptr(area_hi, np.float64), _ptr(thr, np.float64), len(thr),
            _ptr(tp_out, np.uint64), _ptr(fp_out, np.uint64))
        if status:
            raise MemoryError("match_pairs")

    def accumulate(self, class_start, rank, tp, fp, npig, max_dets, rec_thrs, precision, recall,
                   k0: int = 0, k1: int | None = None) -> None:
        k1 = len(class_start) - 1 if k1 is None else k1
        T, R, K, A, M = precision.shape
        status = self._lib.accumulate(
            k0, k1, _ptr(class_start, np.int64), _ptr(rank, np.int64), _ptr(tp, np.uint64), _ptr(fp, np.uint64),
            _ptr(npig, np.int64), K, A, _ptr(max_dets, np.int64), M, _ptr(rec_thrs, np.float64), R, T,
            _ptr(precision, np.float64), _ptr(recall, np.float64))
        if status:
            raise MemoryError("accumulate")
