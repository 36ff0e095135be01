"""The report's proposal-recall section: how many of the objects each proposal source can reach, and how tightly.

Every source used by a compared variant appears once (Selective Search is shared by R-CNN and Fast
R-CNN; each trained RPN is its variant's own): average recall over IoU 0.5:0.05:0.95 and recall at
0.5 / 0.7 against the number of boxes per image, as its region head sees them. Sliding windows come in
grid order, not best first, so only their all-boxes point is drawn.
"""

from __future__ import annotations

from eval.report import NA, Figure, Section, Table

FIGURE = "proposal_recall.png"
_AT = 100  # the "AR@100" column


def _sources(metrics: dict) -> list[tuple[dict, list[str], int]]:
    """(curve, variant names using it, colour index of its first variant), one per source key."""
    seen: dict[str, tuple[dict, list[str], int]] = {}
    for i, v in enumerate(metrics["variants"]):
        curve = v.get("proposal_recall") if v["status"] == "ok" else None
        if not curve:
            continue
        if curve["key"] in seen:
            seen[curve["key"]][1].append(v["name"])
        else:
            seen[curve["key"]] = (curve, [v["name"]], i)
    return list(seen.values())


def _at(curve: dict, n: int) -> float | None:
    """Average recall of the top ``n`` boxes (all boxes when the source gives fewer)."""
    if not curve["ranked"]:
        return None
    for k, value in zip(curve["n"], curve["average_recall"]):
        if k == n:
            return value
    return curve["all"]["average_recall"] if curve["all"]["boxes_per_image"] <= n else None


def _fmt(value: float | None) -> str:
    return NA if value is None else f"{value:.3f}"


def section(metrics: dict) -> Section | None:
    sources = _sources(metrics)
    if not sources:
        return None
    rows, sentences = [], []
    for curve, names, _ in sources:
        full = curve["all"]
        rows.append([curve["source"], ", ".join(names), f"{full['boxes_per_image']:.0f}", _fmt(_at(curve, _AT)),
                     _fmt(full["average_recall"]), _fmt(full["recall_50"]), _fmt(full["recall_70"])])
        if full["recall_50"] is not None:
            sentences.append(
                f"{curve['source']}: its {full['boxes_per_image']:.0f} boxes per image reach "
                f"{full['recall_50']:.0%} of the objects at IoU 0.5 but {full['recall_70']:.0%} at 0.7 "
                f"(average recall {full['average_recall']:.3f}); the region head can only refine what they reach.")
    table = Table(["proposal source", "used by", "boxes/image", f"AR@{_AT}", "AR (all boxes)", "recall@0.5",
                   "recall@0.7"], rows, [[False] * 7 for _ in rows],
                  caption="Average recall (AR) is recall averaged over IoU 0.5:0.05:0.95 (Hosang et al., 2016); "
                          "difficult objects are left out. Boxes are those the region head sees, after the "
                          f"source's own top-n. {NA}: sliding windows are not ranked.", text_columns=2)
    return Section(title="Proposal recall", paragraphs=sentences, tables=[table],
                   figures=[Figure(FIGURE, "Average recall against proposals per image",
                                   "One curve per proposal source (top N boxes per image, log scale); "
                                   "a lone marker is a source measured with all its boxes only.")])


def figures(metrics: dict) -> dict[str, bytes]:
    from eval.report_figures import _new_figure, _plain, _png, variant_color

    sources = _sources(metrics)
    if not sources:
        return {}
    fig = _new_figure(6.4, 4.4)
    ax = fig.add_subplot(1, 1, 1)
    for curve, _, colour in sources:
        full = curve["all"]
        if full["average_recall"] is None:
            continue
        xs = (curve["n"] if curve["ranked"] else []) + [max(full["boxes_per_image"], 1.0)]
        ys = (curve["average_recall"] if curve["ranked"] else []) + [full["average_recall"]]
        ax.plot(xs, ys, marker="o", markersize=3, color=variant_color(colour), label=_plain(curve["source"]))
    ax.set_xscale("log")
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("proposals per image (top N)")
    ax.set_ylabel("average recall, IoU 0.5:0.95")
    ax.set_title("Proposal recall")
    ax.grid(True, linewidth=0.4, alpha=0.5)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return {FIGURE: _png(fig)}
