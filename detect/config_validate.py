"""Validate a plain config tree into typed dataclasses: types, unknown keys, declared ranges, ordered pairs.

Generic over the dataclasses of detect/config.py: each field's type hint says what a value
must be (``Literal`` choices, unions, lists, numbers; YAML 1.1's ``2e-3`` string is read as
the number it means), ``bounded(...)`` metadata its range (detect/config_bounds.py), and a
class's ``ORDERED`` pairs which fields must not exceed which. Every failure is one
``InputError`` naming the key and the file or ``--set`` that gave it (``origins``), with a
close-match suggestion for an unknown key.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from typing import Any, Literal

from detect.config_bounds import bounds_of, out_of_bounds
from eval.errors import InputError

_FLOAT_RE = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is not None:
        return str(tp).replace("typing.", "")
    return "null" if tp is type(None) else getattr(tp, "__name__", str(tp))


def convert_value(value: Any, tp: Any, key: str, origins: dict) -> Any:
    def fail(msg: str):
        src = origins.get(key) or _nearest_origin(key, origins)
        raise InputError(src, msg)

    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            fail(f"{key} must be a mapping, got {type(value).__name__}")
        return build_dataclass(tp, value, key + ".", origins)
    if origin is Literal:
        if value not in typing.get_args(tp):
            fail(f"{key} must be one of {_type_name(tp)}, got {value!r}")
        return value
    if origin in (typing.Union, types.UnionType):
        errors = []
        for arg in typing.get_args(tp):
            try:
                return convert_value(value, arg, key, origins)
            except InputError as exc:
                errors.append(exc)
        fail(f"{key} must be {_type_name(tp)}, got {value!r}")
    if tp is type(None):
        if value is not None:
            fail(f"{key} must be null")
        return None
    if tp is Any:
        return value
    if origin is list:
        if not isinstance(value, list):
            fail(f"{key} must be a list, got {value!r}")
        (item_tp,) = typing.get_args(tp)
        return [convert_value(v, item_tp, f"{key}[{i}]", origins) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            fail(f"{key} must be a mapping, got {value!r}")
        return dict(value)
    if tp is bool:
        if not isinstance(value, bool):
            fail(f"{key} must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            fail(f"{key} must be a whole number, got {value!r}")
        return value
    if tp is float:
        # YAML 1.1 reads "2e-3" (no dot) as a string; accept the number users meant.
        if isinstance(value, str) and _FLOAT_RE.fullmatch(value.strip()):
            value = float(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            fail(f"{key} must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            fail(f"{key} must be a string, got {value!r}")
        return value
    raise TypeError(f"unsupported config type {tp!r} for {key}")


def _nearest_origin(key: str, origins: dict) -> str | None:
    while "." in key:
        key = key.rsplit(".", 1)[0].split("[")[0]
        if key in origins:
            return origins[key]
    return next(iter(origins.values()), None)


def build_dataclass(cls: type, tree: dict, prefix: str, origins: dict):
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    names = list(fields)
    kwargs = {}
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1, cutoff=0.6)
            hint = f" — did you mean {prefix}{close[0]}?" if close else f" (known: {', '.join(names)})"
            raise InputError(origins.get(dotted) or _nearest_origin(dotted, origins), f"unknown key {dotted}{hint}")
        kwargs[key] = convert_value(value, hints[key], dotted, origins)
        check_bounds(fields[key], kwargs[key], dotted, origins.get(dotted) or _nearest_origin(dotted, origins))
    built = cls(**kwargs)
    for low, high in getattr(cls, "ORDERED", ()):  # pairs of fields: low <= high (e.g. IoU thresholds)
        a, b = getattr(built, low), getattr(built, high)
        if a > b:  # name the --set that broke the order if there is one, else the file
            sources = [origins[f"{prefix}{k}"] for k in (low, high) if f"{prefix}{k}" in origins]
            source = next((s for s in sources if str(s).startswith("--set")), None) or next(
                iter(sources), None) or _nearest_origin(f"{prefix}{low}", origins)
            raise InputError(source, f"{prefix}{low} ({a:g}) must not exceed {prefix}{high} ({b:g})")
    return built


def check_bounds(f: dataclasses.Field, value: Any, dotted: str, source: str | None) -> None:
    bounds = bounds_of(f)
    if bounds is None:
        return
    bad = out_of_bounds(value, bounds)
    if bad is not None:
        every = "every number in " if isinstance(value, list) else ""
        got = f"{bad!r} in {value!r}" if isinstance(value, list) else repr(bad)
        raise InputError(source, f"{every}{dotted} must be {bounds.describe()}, got {got}")
