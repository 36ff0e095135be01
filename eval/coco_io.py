"""COCO-format files: annotation JSON (ground truth) and results JSON (detections).

A results file in the plain form every writer produces is scanned straight
into arrays (``eval.coco_engine``: C kernels, numba where no compiler). Anything else, and every annotation
file, is parsed with orjson (a 48 MB results file in ~0.3 s instead of the
standard library's ~2.3 s), fields are pulled out with one list
comprehension each and checked as arrays; only when something is wrong do we
walk the entries one by one to name the first bad one.

COCO boxes are ``[x, y, w, h]``; in memory they become ``[x, y, x + w, y + h]``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import orjson

from eval.errors import InputError
from eval.files import atomic_write_bytes
from eval.gc_pause import no_gc
from eval.types import Detections, GroundTruth, GroundTruthSet, detection_arrays


def read_file_bytes(path: str | os.PathLike) -> bytes:
    """A file's bytes; InputError naming it when it is missing or unreadable."""
    path = Path(path)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    except OSError as exc:
        raise InputError(path, f"cannot read ({exc.__class__.__name__})") from None


def load_json(path: str | os.PathLike, data: bytes | None = None):
    """Parse a JSON file (or its ``data``, already read); InputError naming the file when it is malformed."""
    path = Path(path)
    data = read_file_bytes(path) if data is None else data
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        try:  # the standard library also reads NaN / Infinity (Python's json.dump writes them); we refuse them later
            return json.loads(data)
        except ValueError:
            raise InputError(path, f"malformed or truncated JSON ({exc})") from None


def _list_of_dicts(value, path: Path, what: str) -> list:
    if not isinstance(value, list) or not set(map(type, value)) <= {dict}:
        raise InputError(path, f"{what} must be a list of objects")
    return value


def _id_array(ids: list, path: Path, what: str, entry: str | None = None) -> np.ndarray:
    """Ids as an int64 or str array, all of one kind (COCO uses integers).

    numpy would silently turn ``[7, "7"]`` into two equal strings, after which
    our engine and pycocotools (which keeps 7 and "7" apart) disagree: a mix of
    integers and strings is refused, naming the first id of the other kind.
    ``entry`` names what the list indexes ("annotation", "detection").
    """
    kinds = set(map(type, ids))
    if kinds == {str}:
        return np.array(ids)
    if not ids or kinds == {int}:
        try:
            return np.array(ids, dtype=np.int64)
        except OverflowError:
            raise InputError(path, f"{what} ids must fit in 64 bits; found {max(ids, key=abs)!r}") from None
    at = (lambda i: f" ({entry} {i + 1})") if entry else (lambda i: "")
    if kinds <= {int, str}:
        i = next(k for k, v in enumerate(ids) if type(v) is not type(ids[0]))
        raise InputError(path, f"{what} ids mix integers and strings: {ids[i]!r}{at(i)} after {ids[0]!r} "
                               "(COCO ids are integers; 7 and \"7\" are different ids to pycocotools)")
    i = next(k for k, v in enumerate(ids) if type(v) not in (int, str))
    raise InputError(path, f"{what} ids must all be integers (or all strings); found {ids[i]!r}{at(i)}")


def _lookup(sorted_ids: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Index of each value in ``sorted_ids``, -1 where absent (a table for a dense integer range, else bisection)."""
    if len(sorted_ids) == 0 or len(values) == 0 or sorted_ids.dtype.kind != values.dtype.kind:
        return np.full(len(values), -1, np.int64)
    if sorted_ids.dtype.kind == "i":
        lo, hi = int(sorted_ids[0]), int(sorted_ids[-1])
        if hi - lo <= 4 * len(sorted_ids) + 1024:
            table = np.full(hi - lo + 1, -1, np.int64)
            table[sorted_ids - lo] = np.arange(len(sorted_ids))
            inside = (values >= lo) & (values <= hi)
            if inside.all():
                return table[values - lo]
            return np.where(inside, table[np.clip(values, lo, hi) - lo], -1)
    pos = np.clip(np.searchsorted(sorted_ids, values), 0, len(sorted_ids) - 1)
    return np.where(sorted_ids[pos] == values, pos, -1)


def _kind_hint(ids: np.ndarray, ref: np.ndarray) -> str:
    """' (those ids are integers)' when ``ids`` are strings and ``ref`` integers, or the other way round."""
    if len(ref) == 0 or ids.dtype.kind == ref.dtype.kind:
        return ""
    return f" (whose ids are {'strings' if ref.dtype.kind == 'U' else 'integers'}; 7 and \"7\" differ)"


def _entry_problem(e: dict, need_score: bool) -> str | None:
    """What is wrong with one annotation/result entry's fields, or None."""
    for name in ("image_id", "category_id", "bbox") + (("score",) if need_score else ()):
        if name not in e:
            return f"missing '{name}'"
    box = e["bbox"]
    if not isinstance(box, list) or len(box) != 4 or not all(_is_number(v) for v in box):
        return f"bbox must be 4 numbers [x, y, w, h], got {box!r}"
    if need_score and not _is_number(e["score"]):
        return f"score must be a number, got {e['score']!r}"
    for name in ("area", "iscrowd"):
        if name in e and not _is_number(e[name]):
            return f"{name} must be a number, got {e[name]!r}"
    return None


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _extract(entries: list, path: Path, what: str, need_score: bool):
    """(image ids, category ids, (N, 4) xywh float64, (N,) scores or None), checked."""
    arrays = None
    try:
        img = [e["image_id"] for e in entries]
        cat = [e["category_id"] for e in entries]
        xywh = np.array([e["bbox"] for e in entries]) if entries else np.zeros((0, 4))
        score = np.array([e["score"] for e in entries]) if need_score else None
        if xywh.shape == (len(entries), 4) and xywh.dtype.kind in "fi" and (score is None or score.dtype.kind in "fi"):
            arrays = (img, cat, xywh.astype(np.float64), None if score is None else score.astype(np.float64))
    except (KeyError, TypeError, ValueError):
        pass
    if arrays is None:
        for i, e in enumerate(entries):
            problem = _entry_problem(e, need_score)
            if problem:
                raise InputError(path, f"{what} {i + 1}: {problem}")
        raise InputError(path, f"{what}: unreadable entries")
    img, cat, xywh, score = arrays
    finite = np.isfinite(xywh).all(axis=1) & (np.isfinite(score) if score is not None else True)
    _first_bad(~finite, path, what, "a box value or score is NaN or infinite", img)
    _first_bad((xywh[:, 2] <= 0) | (xywh[:, 3] <= 0), path, what, "box has w <= 0 or h <= 0", img, xywh)
    return _id_array(img, path, "image", what), _id_array(cat, path, "category", what), xywh, score


def _first_bad(bad: np.ndarray, path: Path, what: str, message: str, img, xywh=None) -> None:
    if bad.any():
        i = int(np.argmax(bad))
        img = img if isinstance(img, list) else img.tolist()
        box = f" {xywh[i].tolist()}" if xywh is not None else ""
        raise InputError(path, f"{what} {i + 1} (image id {img[i]!r}): {message}{box}")


def read_coco_ground_truth(json_path: str | os.PathLike, per_image: bool = True):
    """Read a COCO annotation JSON into an ``eval.types.GroundTruthSet``.

    Images come sorted by id and classes by category id, as pycocotools'
    COCOeval takes them. Every image is kept, with or without objects.
    ``difficult`` is set to ``iscrowd`` so that VOC protocols ignore crowds;
    ``area`` is the annotation's ``area`` (``w * h`` when absent).
    ``per_image=False`` leaves ``gts`` empty (``flat`` holds everything):
    5,000 per-image records cost ~25 ms that the COCO protocol never reads.
    """
    with no_gc():
        return _read_coco_ground_truth(Path(json_path), per_image)


def _read_coco_ground_truth(path: Path, per_image: bool):
    from eval.matching import make_flat_gt

    data = load_json(path)
    if not isinstance(data, dict) or not all(k in data for k in ("images", "annotations", "categories")):
        raise InputError(path, "not a COCO annotation file (needs 'images', 'annotations' and 'categories')")
    images = _list_of_dicts(data["images"], path, "'images'")
    cats = _list_of_dicts(data["categories"], path, "'categories'")
    anns = _list_of_dicts(data["annotations"], path, "'annotations'")
    for what, items, keys in (("image", images, ("id",)), ("category", cats, ("id", "name"))):
        for i, item in enumerate(items):
            for key in keys:
                if key not in item:
                    raise InputError(path, f"{what} {i + 1}: missing '{key}'")
    image_ids = _id_array([im["id"] for im in images], path, "image", "'images' entry")
    cat_ids = _id_array([c["id"] for c in cats], path, "category", "'categories' entry")
    for what, ids in (("image", image_ids), ("category", cat_ids)):
        uniq, counts = np.unique(ids, return_counts=True)
        if (counts > 1).any():
            raise InputError(path, f"{what} id {uniq[np.argmax(counts > 1)].item()!r} is listed twice")
    cat_order = np.argsort(cat_ids, kind="stable")
    names = [str(cats[i]["name"]) for i in cat_order]
    if len(set(names)) != len(names):
        raise InputError(path, "two categories share a name")
    img_sorted, cat_sorted = np.sort(image_ids), cat_ids[cat_order]
    ann_img, ann_cat, xywh, _ = _extract(anns, path, "annotation", need_score=False)
    img_idx, cat_idx = _lookup(img_sorted, ann_img), _lookup(cat_sorted, ann_cat)
    checks = ((img_idx < 0, ann_img, img_sorted, "image"), (cat_idx < 0, ann_cat, cat_sorted, "category"))
    for bad, ids, ref, what in checks:
        if bad.any():
            i = int(np.argmax(bad))
            raise InputError(path, f"annotation {i + 1}: {what} id {ids[i].item()!r} is not in '{what}s'"
                             .replace("categorys", "categories") + _kind_hint(ids, ref))
    area, crowd = _area_and_crowd(anns, xywh, path)
    boxes = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
    box_area = xywh[:, 2] * xywh[:, 3]
    by_image = np.argsort(img_idx, kind="stable")  # annotation order kept inside an image
    cuts = np.searchsorted(img_idx[by_image], np.arange(len(img_sorted) + 1))
    gts: list[GroundTruth] = []
    for i, image_id in enumerate(img_sorted.tolist() if per_image else ()):
        sel = by_image[cuts[i]:cuts[i + 1]]
        gts.append(GroundTruth(boxes=boxes[sel], labels=cat_idx[sel], difficult=crowd[sel], iscrowd=crowd[sel],
                               area=area[sel], box_area=box_area[sel], image_id=image_id))
    flat = make_flat_gt(img_idx.astype(np.int64), cat_idx.astype(np.int64), boxes, crowd, crowd, area, box_area,
                        num_images=len(img_sorted))
    return GroundTruthSet(gts=gts, image_ids=img_sorted.tolist(), class_names=tuple(names),
                          category_ids=cat_sorted.tolist(), source=path, flat=flat)


def _area_and_crowd(anns: list, xywh: np.ndarray, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(N,) float64 ``area`` (``w * h`` when absent) and (N,) bool ``iscrowd`` (0 when absent), checked."""
    has_area = np.array([("area" in a) for a in anns], bool)
    area = np.array([a.get("area", 0.0) for a in anns]) if anns else np.zeros(0)
    crowd = np.array([a.get("iscrowd", 0) for a in anns]) if anns else np.zeros(0, np.int64)
    area_ok = area.dtype.kind in "fi" and bool(np.isfinite(area).all()) and not (area < 0).any()
    crowd_ok = crowd.dtype.kind in "ib" and bool(np.isin(crowd, (0, 1)).all())
    if not (area_ok and crowd_ok):
        for i, a in enumerate(anns):
            value, flag = a.get("area", 0.0), a.get("iscrowd", 0)
            if not _is_number(value) or not np.isfinite(value) or value < 0:
                raise InputError(path, f"annotation {i + 1}: area must be a finite number >= 0, got {value!r}")
            if flag not in (0, 1) or isinstance(flag, float):
                raise InputError(path, f"annotation {i + 1}: iscrowd must be 0 or 1, got {flag!r}")
    area = area.astype(np.float64)
    area[~has_area] = (xywh[:, 2] * xywh[:, 3])[~has_area]
    return area, crowd.astype(bool)


def read_coco_results(json_path: str | os.PathLike, image_ids: Sequence, category_ids: Sequence) -> list[Detections]:
    """Read a COCO results JSON (``[{"image_id", "category_id", "bbox": [x, y, w, h], "score"}, ...]``).

    Returns one ``Detections`` per entry of ``image_ids`` (same order), with
    ``labels`` the index of the result's category in ``category_ids``,
    detections in file order and ``order`` their 0-based position in the file.
    InputError names the file and the 1-based detection number for a
    malformed entry, an image id not in ``image_ids``, or a category id not
    in ``category_ids``.
    """
    flat = read_coco_results_flat(json_path, image_ids, category_ids)
    by_image = np.argsort(flat.image, kind="stable")
    cuts = np.searchsorted(flat.image[by_image], np.arange(len(image_ids) + 1))
    out: list[Detections] = []
    for i in range(len(image_ids)):
        sel = by_image[cuts[i]:cuts[i + 1]]
        out.append(Detections(boxes=flat.boxes[sel], scores=flat.scores[sel], labels=flat.label[sel],
                              order=flat.order[sel], box_area=flat.box_area[sel]))
    return out


def scan_in_background(json_path: str | os.PathLike, engine=None):
    """Start reading and scanning a results file in a thread; returns ``wait()`` -> ``(data, plain)``.

    The C scanner releases the GIL, so it runs while this thread parses the
    annotation file. ``wait()`` re-raises what the thread raised (an
    unreadable file); ``plain`` is None when the file is not in the plain form.
    """
    import threading

    from eval.coco_engine import kernels, read_plain_rows

    kernels(engine)  # imported and loaded here: the thread below then never waits for the GIL to do it

    out: dict = {}

    def run() -> None:
        try:
            data = read_file_bytes(json_path)
            out["value"] = (data, read_plain_rows(data, engine))
        except BaseException as exc:  # noqa: BLE001 - handed to wait()
            out["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    def wait():
        thread.join()
        if "error" in out:
            raise out["error"]
        return out["value"]

    return wait


def read_coco_results_flat(json_path: str | os.PathLike, image_ids: Sequence, category_ids: Sequence,
                           engine=None, scanned=None):
    """``read_coco_results`` as one ``eval.matching.FlatDets`` in file order (no per-image split).

    ``engine``: the scanner of the plain form (``eval.coco_engine.kernels``);
    ``scanned``: the ``wait`` of ``scan_in_background(json_path)``, started earlier.
    """
    from eval.matching import FlatDets

    from eval.coco_engine import kernels, read_plain_rows

    path = Path(json_path)
    if scanned is not None:
        data, plain = scanned()
    else:
        data = read_file_bytes(path)
        plain = read_plain_rows(data, engine)  # the common form straight to arrays; None: anything else
    if plain is not None:
        flat = _finish_in_c(plain, image_ids, category_ids, kernels(engine))
        if flat is not None:
            return flat
        ids, values = plain
        img, cat, xywh, score = ids[:, 0], ids[:, 1], values[:, :4], values[:, 4]
        _first_bad((xywh[:, 2] <= 0) | (xywh[:, 3] <= 0), path, "detection", "box has w <= 0 or h <= 0", img, xywh)
    else:
        with no_gc():
            entries = _list_of_dicts(load_json(path, data), path, "a COCO results file")
            img, cat, xywh, score = _extract(entries, path, "detection", need_score=True)
            del entries  # freed here, by reference counting, before the collector runs again
    del data
    img_ref = _id_array(list(image_ids), path, "image") if len(image_ids) else np.zeros(0, np.int64)
    cat_ref = np.asarray(list(category_ids)) if len(category_ids) else np.zeros(0, np.int64)
    img_order, cat_order = np.argsort(img_ref, kind="stable"), np.argsort(cat_ref, kind="stable")
    img_pos, cat_pos = _lookup(img_ref[img_order], img), _lookup(cat_ref[cat_order], cat)
    if (img_pos < 0).any():
        i = int(np.argmax(img_pos < 0))
        raise InputError(path, f"detection {i + 1}: image id {img[i].item()!r} is not in the ground truth"
                               + _kind_hint(img, img_ref))
    if (cat_pos < 0).any():
        i = int(np.argmax(cat_pos < 0))
        raise InputError(path, f"detection {i + 1}: category id {cat[i].item()!r} is not in the ground truth"
                               + _kind_hint(cat, cat_ref))
    boxes = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
    return FlatDets(image=img_order[img_pos].astype(np.int64), label=cat_order[cat_pos].astype(np.int64),
                    boxes=boxes, scores=score, order=np.arange(len(score), dtype=np.int64),
                    box_area=xywh[:, 2] * xywh[:, 3])


def _id_table(ids: Sequence):
    """``(table, lo)`` with ``table[id - lo]`` the index of ``id`` in ``ids`` (-1 elsewhere); None unless the ids
    are distinct integers in a dense range (the C path's condition; the numpy path handles every other case)."""
    if not len(ids) or not set(map(type, ids)) <= {int}:
        return None
    try:
        ref = np.array(ids, dtype=np.int64)
    except OverflowError:
        return None
    lo, hi = int(ref.min()), int(ref.max())
    if hi - lo > 4 * len(ref) + 1024:
        return None
    table = np.full(hi - lo + 1, -1, np.int64)
    table[ref - lo] = np.arange(len(ref))
    if int((table >= 0).sum()) != len(ref):  # a repeated id
        return None
    return table, lo


def _finish_in_c(rows, image_ids: Sequence, category_ids: Sequence, k):
    """The scanned rows as ``FlatDets`` in one C pass (``finish_results``), or None: no C kernels, ids the
    table cannot hold, or a problem in some row (the numpy path names it)."""
    from eval.matching import FlatDets

    if not hasattr(k, "finish_results"):
        return None
    images, cats = _id_table(image_ids), _id_table(category_ids)
    if images is None or cats is None:
        return None
    finished = k.finish_results(*rows, *images, *cats)
    if finished is None:
        return None
    image, label, boxes, box_area, scores = finished
    return FlatDets(image=image, label=label, boxes=boxes, scores=scores, order=np.arange(len(scores), dtype=np.int64),
                    box_area=box_area)


def write_coco_results(path: str | os.PathLike, image_ids: Sequence, dets: Sequence[Detections],
                       category_ids: Sequence) -> Path:
    """Write detections as a COCO results JSON, atomically.

    ``dets[i]`` belongs to ``image_ids[i]``; ``labels`` index ``category_ids``.
    Boxes are written as ``[x1, y1, x2 - x1, y2 - y1]`` at full float precision.
    """
    if len(image_ids) != len(dets):
        raise ValueError(f"{len(image_ids)} image ids but {len(dets)} detection entries")
    cat_ids = list(category_ids)
    rows = []
    for image_id, d in zip(image_ids, dets):
        boxes, scores, labels = detection_arrays(image_id, d)
        xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1).tolist()
        image_id = image_id.item() if isinstance(image_id, np.generic) else image_id
        rows.extend({"image_id": image_id, "category_id": cat_ids[lab], "bbox": box, "score": s}
                    for box, s, lab in zip(xywh, scores.tolist(), labels.tolist()))
    return atomic_write_bytes(path, orjson.dumps(rows))
