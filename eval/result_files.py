"""Ground-truth and result files for ``detladder eval``: VOC devkit and COCO formats, one import.

* VOC ground truth: a VOC root (``Annotations/*.xml`` + ``ImageSets/Main/<split>.txt``),
  read through ``eval.voc_annotations`` (the one VOC XML reader; no pixels).
* VOC detections: a directory of devkit result files ``comp4_det_<split>_<class>.txt``,
  lines ``<image_id> <score> <xmin> <ymin> <xmax> <ymax>``, 1-based inclusive
  (read as ``x1 = xmin - 1, x2 = xmax``; written back as ``xmin = x1 + 1, xmax = x2``).
* COCO annotation and results JSON: ``eval.coco_io``, re-exported here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from eval.coco_io import read_coco_ground_truth, read_coco_results, write_coco_results
from eval.errors import InputError
from eval.files import atomic_write_text
from eval.types import Detections, GroundTruth, GroundTruthSet, detection_arrays
from eval.voc_annotations import read_class_names, read_voc_annotations

__all__ = [
    "GroundTruthSet", "read_voc_ground_truth", "read_coco_ground_truth", "read_voc_results",
    "read_coco_results", "write_voc_results", "write_coco_results", "voc_result_path",
]


def read_voc_ground_truth(root: str | os.PathLike, split: str,
                          class_names: Sequence[str] | None = None) -> GroundTruthSet:
    """Ground truth of every image listed in ``ROOT/ImageSets/Main/<split>.txt``, in split order.

    ``class_names`` default: ``ROOT/classes.txt`` or the 20 VOC classes. Any bad
    file (missing split, id without XML, malformed XML, unknown class) raises
    ``InputError`` naming it.
    """
    root = Path(root)
    names = tuple(class_names) if class_names is not None else read_class_names(root)
    annotations, _ = read_voc_annotations(root, split, names, on_error="raise")
    gts = [GroundTruth(boxes=a.boxes, labels=a.labels, difficult=a.difficult, image_id=a.image_id)
           for a in annotations]
    return GroundTruthSet(gts=gts, image_ids=[a.image_id for a in annotations], class_names=names,
                          category_ids=None, source=root)


def voc_result_path(directory: str | os.PathLike, split: str, class_name: str) -> Path:
    """``DIR/comp4_det_<split>_<class>.txt``, the devkit's name for a class's detections."""
    return Path(directory) / f"comp4_det_{split}_{class_name}.txt"


def read_voc_results(directory: str | os.PathLike, split: str, image_ids: Sequence[str],
                     class_names: Sequence[str]) -> tuple[list[Detections], list[str]]:
    """Read ``comp4_det_<split>_<class>.txt`` for every class; other splits' files are ignored.

    Returns ``(dets, classes_with_files)``: one ``Detections`` per entry of
    ``image_ids`` (same order) with ``order`` = the line number, so equal
    scores keep their file order; and the classes that have a file (possibly
    empty). A class without a file simply has no detections. InputError names
    the file and 1-based line for a line without 6 fields, a non-numeric,
    NaN or infinite value, an inverted box, or an image id not in the split.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise InputError(directory, "not a directory of comp4_det_<split>_<class>.txt result files")
    index = {str(i): k for k, i in enumerate(image_ids)}
    parts = []
    found = []
    for c, name in enumerate(class_names):
        path = voc_result_path(directory, split, name)
        if not path.is_file():
            continue
        found.append(name)
        img, values, lines = _parse_result_file(path, index)
        parts.append((img, values, lines, np.full(len(img), c, np.int64)))
    if not parts:
        return [_empty_detections() for _ in image_ids], found
    img = np.concatenate([p[0] for p in parts])
    values = np.concatenate([p[1] for p in parts])
    lines = np.concatenate([p[2] for p in parts])
    labels = np.concatenate([p[3] for p in parts])
    boxes = values[:, 1:].copy()
    boxes[:, 0:2] -= 1.0  # 1-based inclusive -> 0-based, x2/y2 exclusive
    by_image = np.argsort(img, kind="stable")
    cuts = np.searchsorted(img[by_image], np.arange(len(image_ids) + 1))
    dets = []
    for i in range(len(image_ids)):
        sel = by_image[cuts[i]:cuts[i + 1]]
        dets.append(Detections(boxes=boxes[sel], scores=values[sel, 0], labels=labels[sel], order=lines[sel]))
    return dets, found


def _empty_detections() -> Detections:
    return Detections(boxes=np.zeros((0, 4)), scores=np.zeros(0), labels=np.zeros(0, np.int64),
                      order=np.zeros(0, np.int64))


def _parse_result_file(path: Path, index: dict[str, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One result file -> (image index (N,), values (N, 5) score + box, 1-based line numbers (N,)).

    A vectorised pass handles well-formed files; anything unusual goes to the
    line-by-line pass, which names the first bad line.
    """
    try:
        data = path.read_bytes()
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, f"cannot read ({exc.__class__.__name__})") from None
    fast = _parse_result_bytes(data, index)
    if fast is not None:
        return fast
    rows = [line.split() for line in text.split("\n")]  # lines as editors number them (not splitlines' \f)
    line_no = np.array([n for n, r in enumerate(rows, start=1) if r], dtype=np.int64)
    rows = [r for r in rows if r]  # blank lines (a trailing newline) carry nothing
    bad = [k for k, r in enumerate(rows) if len(r) != 6]
    if bad:
        k = bad[0]
        raise InputError(path, f"line {line_no[k]}: expected 6 fields '<image_id> <score> <xmin> <ymin> <xmax> "
                               f"<ymax>', got {len(rows[k])}")
    try:
        values = np.array([r[1:] for r in rows], dtype=np.float64).reshape(-1, 5)
    except ValueError:
        for k, r in enumerate(rows):
            try:
                [float(v) for v in r[1:]]
            except ValueError:
                raise InputError(path, f"line {line_no[k]}: not a number in {' '.join(r[1:])!r}") from None
        raise
    finite = np.isfinite(values).all(axis=1)
    if not finite.all():
        k = int(np.argmax(~finite))
        raise InputError(path, f"line {line_no[k]}: NaN or infinite value in {' '.join(rows[k][1:])!r}")
    inverted = (values[:, 3] < values[:, 1]) | (values[:, 4] < values[:, 2])  # xmin == xmax is one pixel wide
    if inverted.any():
        k = int(np.argmax(inverted))
        raise InputError(path, f"line {line_no[k]}: inverted box (xmax < xmin or ymax < ymin): {' '.join(rows[k][2:])}")
    img = np.array([index.get(r[0], -1) for r in rows], dtype=np.int64)
    if (img < 0).any():
        k = int(np.argmax(img < 0))
        raise InputError(path, f"line {line_no[k]}: image id {rows[k][0]!r} is not in the split")
    return img, values, line_no


def _parse_result_bytes(data: bytes, index: dict[str, int]):
    """The fast pass of ``_parse_result_file``: None unless every line is blank or 6 good fields.

    Tokens are found on the bytes with numpy (ASCII space, tab, CR, LF);
    numbers are parsed by numpy's bytes-to-float cast, which rounds as
    Python's ``float`` does.
    """
    b = np.frombuffer(data, np.uint8)
    if len(b) == 0:
        return np.zeros(0, np.int64), np.zeros((0, 5)), np.zeros(0, np.int64)
    if ((b == 11) | (b == 12)).any():  # vertical tab / form feed: leave to the careful pass
        return None
    newline = b == 10
    sep = newline | (b == 32) | (b == 9) | (b == 13)
    starts = ~sep
    starts[1:] &= sep[:-1]
    breaks = np.flatnonzero(newline)
    token_line = np.searchsorted(breaks, np.flatnonzero(starts))  # 0-based line: newlines before the token
    per_line = np.bincount(token_line, minlength=len(breaks) + 1)
    if not ((per_line == 0) | (per_line == 6)).all():
        return None
    tokens = np.array(data.split(), dtype="S").reshape(-1, 6)
    try:
        values = tokens[:, 1:].astype(np.float64)
    except ValueError:
        return None
    by_bytes = {k.encode("utf-8"): v for k, v in index.items()}
    img = np.array([by_bytes.get(t, -1) for t in tokens[:, 0].tolist()], dtype=np.int64)
    inverted = (values[:, 3] < values[:, 1]) | (values[:, 4] < values[:, 2])
    if (img < 0).any() or not np.isfinite(values).all() or inverted.any():
        return None
    return img, values, np.flatnonzero(per_line == 6).astype(np.int64) + 1


def write_voc_results(out_dir: str | os.PathLike, split: str, image_ids: Sequence[str],
                      dets: Sequence[Detections], class_names: Sequence[str]) -> list[Path]:
    """Write devkit result files ``comp4_det_<split>_<class>.txt``, one per class, atomically.

    ``dets[i]`` belongs to ``image_ids[i]``. Every class gets a file, empty
    when it has no detections. Lines are ``<image_id> <score> <xmin> <ymin>
    <xmax> <ymax>`` with ``xmin = x1 + 1, xmax = x2`` (1-based inclusive),
    values at full float precision (shortest round-trip form), in image order.
    """
    if len(image_ids) != len(dets):
        raise ValueError(f"{len(image_ids)} image ids but {len(dets)} detection entries")
    lines: list[list[str]] = [[] for _ in class_names]
    for image_id, d in zip(image_ids, dets):
        boxes, scores, labels = detection_arrays(image_id, d)
        for (x1, y1, x2, y2), s, lab in zip(boxes.tolist(), scores.tolist(), labels.tolist()):
            lines[lab].append(f"{image_id} {s!r} {x1 + 1.0!r} {y1 + 1.0!r} {x2!r} {y2!r}\n")
    return [atomic_write_text(voc_result_path(out_dir, split, name), "".join(rows))
            for name, rows in zip(class_names, lines)]
