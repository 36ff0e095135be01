"""The metrics.json schema of ``detladder compare`` and its validator.

``compare`` writes metrics.json; ``detladder report`` re-renders the report from
it alone, so the file carries everything the report shows. A hand-edited or
truncated file must fail with ONE line naming the key that is wrong
(``variants[2].mAP: expected a number or null, got 'high'``), never a traceback
from deep inside the renderer. The schema is written as data (:data:`SCHEMA`)
so that the reader and this docstring cannot drift apart:

    {"schema_version": 1, "protocol": "voc12", "created": ISO time,
     "dataset":  {"root", "split", "num_images", "class_names": [str]},
     "settings": {name: scalar}   # what was held equal: backbone, input size, seed, ...
     "machine":  {name: scalar}   # CPU/GPU model, threads, torch version, load averages, ...
     "timing"?:  {name: scalar}   # images, warm-up, torch threads, "busy": warning or null
     "examples": [{"image_id", "file": relative path of a PNG/JPEG beside metrics.json,
                   "width", "height", "ground_truth": [{"label", "box": [x1,y1,x2,y2]}]}],
     "variants": [{"name", "config", "status": "ok"|"failed", "error": str|null,
                   "rung", "proposal_source", "region_classifier",
                   "mAP": float|null, "per_class": {class: AP|null},
                   "seconds_per_image": {"proposals", "network", "total",
                                         "cpu"?: CPU seconds, "wall_per_cpu"?},
                   "params": int|null, "flops"?: int|null (multiply-adds per image, network only),
                   "train_seconds": float|null,
                   "curves": {"pooled": {"recall": [...], "precision": [...]}|null,
                              "per_class": {class: curve|null}},
                   "examples": {image_id: [{"label", "score", "box"}]},
                   "errors"?: {"ap50", "main": {type: AP gain}, "special": {...}, "counts"},
                   "breakdowns"?: {"by_count", "by_size", "size_thresholds", "corloc"}}]}

Keys with a trailing ``?`` in :data:`SCHEMA` may be absent. Numbers must be
finite; APs lie in [0, 1], seconds and counts are >= 0. Boxes are pixels
``[x1, y1, x2, y2]`` (0-based, x2/y2 exclusive).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path, PurePosixPath

from eval.errors import InputError

SCHEMA_VERSION = 1

# Leaf specs are strings; ``"?x"`` = x or null. ["list", spec] is a list of spec;
# ("map", spec) is a mapping from any string to spec; a dict is a record.
_SCALAR = "scalar"
_CURVE = {"recall": ["list", "num"], "precision": ["list", "num"]}
_BOX = ["box"]
_DETECTION = {"label": "str", "score": "num", "box": _BOX}
_GT_BOX = {"label": "str", "box": _BOX, "difficult?": "bool"}

SCHEMA: dict = {
    "schema_version": "int",
    "protocol": "str",
    "created?": "?str",
    "dataset": {"root": "?str", "split": "str", "num_images": "count", "class_names": ["list", "str"]},
    "settings": ("map", _SCALAR),
    "machine": ("map", _SCALAR),
    "timing?": ("map", _SCALAR),
    "examples": ["list", {"image_id": "str", "file": "path", "width": "count", "height": "count",
                          "ground_truth": ["list", _GT_BOX]}],
    "variants": ["list", {
        "name": "str",
        "config": "str",
        "status": "status",
        "error": "?str",
        "rung": "?str",
        "proposal_source": "?str",
        "region_classifier": "?str",
        "mAP": "?frac",
        "per_class": ("map", "?frac"),
        "seconds_per_image": {"proposals": "?nonneg", "network": "?nonneg", "total": "?nonneg",
                              "cpu?": "?nonneg", "wall_per_cpu?": "?nonneg"},
        "params": "?count",
        "train_seconds": "?nonneg",
        "flops?": "?count",  # multiply-adds per image of the network (absent in files from before it was measured)
        "curves": {"pooled": ("?", _CURVE), "per_class": ("map", ("?", _CURVE))},
        "examples": ("map", ["list", _DETECTION]),
        "errors?": ("?", {"ap50": "?frac", "main": ("map", "?num"), "special": ("map", "?num"),
                          "counts": ("map", "count")}),
        "breakdowns?": ("?", {"protocol": "str", "size_thresholds": ["list", "num"],
                              "by_count": ("map", {"mAP": "?frac", "images": "count", "objects": "count"}),
                              "by_size": ("map", {"mAP": "?frac", "objects": "count"}),
                              "corloc": {"value": "?frac", "images": "count", "correct": "count"}}),
        "proposal_recall?": ("?", {"source": "str", "key": "str", "ranked": "bool", "n": ["list", "int"],
                                   "average_recall": ["list", "?num"], "recall_50": ["list", "?num"],
                                   "recall_70": ["list", "?num"], "num_gt": "int",
                                   "all": {"boxes_per_image": "num", "average_recall": "?num",
                                           "recall_50": "?num", "recall_70": "?num"}}),
        "training?": ("?", {"iterations": "count", "seconds": ["list", "nonneg"], "loss": ["list", "num"],
                            "val_seconds": ["list", "nonneg"], "val_mAP": ["list", "frac"],
                            "last_tenth_change": "?num", "flattened": "?bool"}),
    }],
}

_DESCRIBE = {
    "str": "a string", "int": "a whole number", "num": "a finite number", "bool": "true or false",
    "frac": "a number from 0 to 1", "nonneg": "a finite number >= 0", "count": "a whole number >= 0",
    _SCALAR: "a string, number, true/false or null", "path": "a relative file path",
    "status": "'ok' or 'failed'", "box": "a list of 4 finite numbers [x1, y1, x2, y2]",
}


def _short(value: object) -> str:
    text = json.dumps(value) if not isinstance(value, float) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _is_num(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _leaf_ok(value: object, kind: str) -> bool:
    if kind == "str":
        return isinstance(value, str)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "num":
        return _is_num(value)
    if kind == "frac":  # AP and mAP
        return _is_num(value) and 0.0 <= value <= 1.0
    if kind == "nonneg":  # seconds
        return _is_num(value) and value >= 0.0
    if kind == "count":
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0
    if kind == "bool":
        return isinstance(value, bool)
    if kind == _SCALAR:
        return value is None or isinstance(value, (str, bool)) or _is_num(value)
    if kind == "status":
        return value in ("ok", "failed")
    if kind == "path":  # relative, inside the report's directory: no absolute paths, no '..'
        if not isinstance(value, str) or not value or "\\" in value:
            return False
        parts = PurePosixPath(value).parts
        return not PurePosixPath(value).is_absolute() and ".." not in parts
    if kind == "box":
        return isinstance(value, list) and len(value) == 4 and all(_is_num(v) for v in value)
    raise ValueError(f"unknown schema kind {kind!r}")


def check(value: object, spec: object, where: str, path: str | os.PathLike | None) -> None:
    """Raise ``InputError(path, "<key>: ...")`` at the first place ``value`` breaks ``spec``."""

    def fail(expected: str) -> None:
        raise InputError(path, f"key {where or '<top>'}: expected {expected}, got {_short(value)}")

    if isinstance(spec, str):
        optional = spec.startswith("?")
        kind = spec[1:] if optional else spec
        if not (optional and value is None) and not _leaf_ok(value, kind):
            fail(_DESCRIBE[kind] + (" or null" if optional else ""))
    elif isinstance(spec, tuple) and spec[0] == "?":
        if value is not None:
            check(value, spec[1], where, path)
    elif isinstance(spec, list):
        if spec == _BOX:
            check(value, "box", where, path)
            return
        if not isinstance(value, list):
            fail("a list")
        for i, item in enumerate(value):
            check(item, spec[1], f"{where}[{i}]", path)
    elif isinstance(spec, tuple) and spec[0] == "map":
        if not isinstance(value, dict):
            fail("a mapping")
        for key, item in value.items():
            check(item, spec[1], f"{where}.{key}" if where else key, path)
    elif isinstance(spec, dict):
        if not isinstance(value, dict):
            fail("a mapping")
        for raw_key, sub in spec.items():
            key = raw_key.rstrip("?")
            dotted = f"{where}.{key}" if where else key
            if key not in value:
                if raw_key.endswith("?"):
                    continue
                raise InputError(path, f"key {dotted}: missing")
            check(value[key], sub, dotted, path)
    else:  # pragma: no cover - a mistake in SCHEMA itself
        raise ValueError(f"bad schema node at {where}: {spec!r}")


def _check_consistency(metrics: dict, path: str | os.PathLike | None) -> None:
    """Rules a type check cannot express: curve lengths agree, names are unique."""
    if metrics["schema_version"] != SCHEMA_VERSION:
        raise InputError(path, f"key schema_version: this detladder reads version {SCHEMA_VERSION}, "
                               f"got {_short(metrics['schema_version'])}")
    seen: set[str] = set()
    for i, variant in enumerate(metrics["variants"]):
        if variant["name"] in seen:
            raise InputError(path, f"key variants[{i}].name: {_short(variant['name'])} appears twice")
        seen.add(variant["name"])
        curves = variant["curves"]
        named = [("pooled", curves["pooled"])] + [(f"per_class.{k}", c) for k, c in curves["per_class"].items()]
        for name, curve in named:
            if curve is not None and len(curve["recall"]) != len(curve["precision"]):
                raise InputError(path, f"key variants[{i}].curves.{name}: recall and precision differ in length")
    ids = [ex["image_id"] for ex in metrics["examples"]]
    if len(set(ids)) != len(ids):
        raise InputError(path, "key examples: an image_id appears twice")


def validate_metrics(metrics: object, path: str | os.PathLike | None = None) -> dict:
    """Check a parsed metrics.json against :data:`SCHEMA`; returns it unchanged."""
    check(metrics, SCHEMA, "", path)
    _check_consistency(metrics, path)  # type: ignore[arg-type]
    return metrics  # type: ignore[return-value]


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows")


def load_metrics(path: str | os.PathLike) -> dict:
    """Read and validate metrics.json; every problem is one ``InputError`` naming the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(path, "metrics file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, f"cannot read metrics file ({exc.__class__.__name__})") from None
    try:
        metrics = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise InputError(path, f"not valid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except ValueError as exc:
        raise InputError(path, str(exc)) from None
    return validate_metrics(metrics, path)
