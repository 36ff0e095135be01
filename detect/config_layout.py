"""Configs in the layout before issue 12, read in today's: model.pt files and ``--set`` keys of earlier runs.

Before issue 12 a config named its rung (``model.rung: rcnn``) and kept precomputed
proposals and sliding windows in a top-level ``proposals`` section; the regression
head's section was ``model.regression``. Today a config names its parts
(``model.proposals``, ``model.region_head``) with a section each. ``detect.config``
passes every tree through :func:`upgrade_rung_layout` before validating it.
"""

from __future__ import annotations

# Configs written before issue 12 named a rung (``model.rung``) and kept precomputed proposals and
# sliding windows in a top-level ``proposals`` section; a rung is this pair of parts.
_RUNG_PARTS = {"regression": ("whole_image", "global_pool"), "sliding_window": ("windows", "crop"),
               "rcnn": ("precomputed", "crop"), "fast_rcnn": ("precomputed", "roi"), "faster_rcnn": ("rpn", "roi")}
_WINDOW_KEYS = ("scales", "ratios", "stride")


def upgrade_rung_layout(tree: dict) -> dict:
    """A tree in the layout before issue 12 (``model.rung``, ``proposals.*``, ``model.regression``) in today's.

    So that model.pt files and ``--set proposals.top_n_test=...`` from earlier runs keep working;
    a tree already in today's layout is returned unchanged.
    """
    model = tree.get("model") if isinstance(tree.get("model"), dict) else {}
    old = tree.get("proposals") if isinstance(tree.get("proposals"), dict) else None
    if "rung" not in model and "regression" not in model and old is None:
        return tree
    tree, model, old = {k: v for k, v in tree.items() if k != "proposals"}, dict(model), dict(old or {})
    rung = model.pop("rung", None)
    if rung in _RUNG_PARTS:
        model.setdefault("proposals", _RUNG_PARTS[rung][0])
        model.setdefault("region_head", _RUNG_PARTS[rung][1])
    elif rung is not None:
        model["rung"] = rung  # not a rung: validation names the unknown key
    if "regression" in model:
        model["global_pool"] = model.pop("regression")
    windows = {k: old[k] for k in _WINDOW_KEYS if k in old}
    pre = {k: old[k] for k in ("cache_dir", "compute", "top_n_train", "top_n_test") if k in old}
    if old.get("method") == "sliding_window" and model.get("proposals") == "precomputed":
        pre.update(method="sliding_window", params=windows)
    elif any(k in old for k in ("method", "mode", "max_side", "min_size")):
        given = {k: old[k] for k in ("mode", "max_side", "min_size") if k in old}
        # A full old-layout tree meant the old section's defaults for what it left out.
        pre["params"] = {"mode": "fast", "max_side": None, "min_size": 4, **given} if "method" in old else given
    if windows:  # the old keys win: they come from the stored config or a later --set
        model["windows"] = {**(model.get("windows") or {}), **windows}
    if pre:
        current = dict(model.get("precomputed") or {})
        pre["params"] = {**(current.get("params") or {}), **pre.get("params", {})}
        model["precomputed"] = {**current, **pre}
    tree["model"] = model
    return tree
