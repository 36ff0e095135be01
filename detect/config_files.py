"""Config files: YAML reading, ``_base_`` inheritance, deep merge and ``--set key=value`` overrides.

Produces the plain merged tree (and ``origins``: which file or ``--set`` gave each
dotted key, so that errors name it); ``detect.config`` validates the tree.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from eval.errors import InputError


def _read_yaml(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(path, "config file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, f"cannot read config ({exc.__class__.__name__})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise InputError(path, f"invalid YAML{where}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(path, "a config file must hold a mapping at the top level")
    return data


def _merge(base: dict, over: dict, origins: dict, source: str, prefix: str = "") -> dict:
    """Deep-merge ``over`` into a copy of ``base``, recording which source set each key."""
    out = dict(base)
    for key, value in over.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value, origins, source, dotted + ".")
        else:
            out[key] = value
            origins[dotted] = source
            if isinstance(value, dict):
                _record(value, origins, source, dotted + ".")
    return out


def _record(tree: dict, origins: dict, source: str, prefix: str) -> None:
    for key, value in tree.items():
        origins[f"{prefix}{key}"] = source
        if isinstance(value, dict):
            _record(value, origins, source, f"{prefix}{key}.")


def load_tree(path: str | Path, origins: dict | None = None, _seen: tuple = ()) -> dict:
    """The merged YAML tree of ``path`` and its ``_base_`` chain (no validation)."""
    path = Path(path).resolve()
    origins = {} if origins is None else origins
    if path in _seen:
        raise InputError(path, "_base_ chain loops back to this file")
    data = _read_yaml(path)
    if not data and not _seen:  # training on built-in defaults nobody chose would be a silent surprise
        raise InputError(path, "the config file is empty, so it chooses no detector; start from one of "
                               "configs/ladder/*.yaml (or name one with _base_)")
    bases = data.pop("_base_", [])
    bases = [bases] if isinstance(bases, str) else bases
    if not isinstance(bases, list) or not all(isinstance(b, str) for b in bases):
        raise InputError(path, "_base_ must be a path or a list of paths")
    merged: dict = {}
    for base in bases:
        base_path = (path.parent / base).resolve()
        if not base_path.is_file():
            raise InputError(path, f"_base_ file not found: {base}")
        merged = _merge(merged, load_tree(base_path, origins, _seen + (path,)), {}, "")
    return _merge(merged, data, origins, str(path))


def apply_overrides(tree: dict, overrides: list[str], origins: dict) -> dict:
    """Apply ``key.sub=value`` strings (values parsed as YAML) to the tree."""
    for item in overrides:
        if "=" not in item:
            raise InputError(None, f"--set {item!r}: expected key=value")
        key, raw = item.split("=", 1)
        key = key.strip()
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        patch: dict = {}
        node = patch
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
        tree = _merge(tree, patch, origins, f"--set {key}")
    return tree
