"""One sentence per variant under the ladder table: what the step up from the row above buys, and at what cost.

Generated from the numbers in metrics.json alone, never written by hand: the mAP and its change
against the previous finished row, the time per image as a multiple of that row's, the error type
that costs the variant the most AP@50 (``errors``, eval.error_analysis) and, when the breakdowns
exist, how its AP moves from one-object images to images with four or more objects.
"""

from __future__ import annotations


def _seconds(v: dict) -> float | None:
    return (v.get("seconds_per_image") or {}).get("total")


def _costliest(v: dict) -> str | None:
    from eval.report_errors import WORDS

    main = (v.get("errors") or {}).get("main") or {}
    ranked = sorted(((cost, k) for k, cost in main.items() if cost is not None and cost > 0.0005), reverse=True)
    return f"{WORDS[ranked[0][1]]} cost it the most AP@50 (+{ranked[0][0]:.3f} if fixed)" if ranked else None


def _crowding(v: dict) -> str | None:
    counts = (v.get("breakdowns") or {}).get("by_count") or {}
    one, many = (counts.get("1") or {}).get("mAP"), (counts.get("4+") or {}).get("mAP")
    if one is None or many is None:
        return None
    return f"AP {one:.3f} on one-object images, {many:.3f} with four or more"


def ladder_notes(metrics: dict) -> list[str]:
    """One sentence per finished variant, in table order; failed variants are left to the failures list."""
    notes, previous = [], None
    for v in metrics["variants"]:
        if v["status"] != "ok" or v["mAP"] is None:
            continue
        parts = [f"mAP {v['mAP']:.3f}"]
        if previous is not None:
            parts[0] += f" ({v['mAP'] - previous['mAP']:+.3f} on {previous['name']})"
            now, before = _seconds(v), _seconds(previous)
            if now and before:
                parts.append(f"{now / before:.1f}x its time per image")
        parts += [p for p in (_costliest(v), _crowding(v)) if p]
        notes.append(f"{v['name']}: " + "; ".join(parts) + ".")
        previous = v
    return notes
