"""The report's breakdowns section: AP by objects per image and by object size, and CorLoc (``eval.breakdowns``).

Two tables (the markdown report gets the same), one sentence per variant comparing its AP on
one-object images with its AP on crowded ones (generated from the numbers), and a bar plot of both
breakdowns.
"""

from __future__ import annotations

from eval.report import NA, Figure, Section, Table

FIGURE = "breakdowns.png"
COUNT_BINS = ("1", "2-3", "4+")
SIZES = ("small", "medium", "large")


def _analysed(metrics: dict) -> list[tuple[int, dict]]:
    return [(i, v) for i, v in enumerate(metrics["variants"]) if v["status"] == "ok" and v.get("breakdowns")]


def _fmt(value) -> str:
    return NA if value is None else f"{value:.3f}"


def _sentence(name: str, b: dict) -> str:
    one, many = b["by_count"]["1"]["mAP"], b["by_count"]["4+"]["mAP"]
    c = b["corloc"]
    corloc = ("" if c["value"] is None
              else f"; CorLoc on one-object images {c['value']:.2f} ({c['correct']} of {c['images']})")
    if one is None or many is None:
        return f"{name}: not enough images in every object-count bin to compare{corloc}."
    if one > many + 0.05:
        trend = f"its AP falls from {one:.3f} on one-object images to {many:.3f} on images with 4 or more objects"
    elif many > one + 0.05:
        trend = f"its AP rises from {one:.3f} on one-object images to {many:.3f} on images with 4 or more objects"
    else:
        trend = f"its AP is about the same on one-object images ({one:.3f}) and on crowded ones ({many:.3f})"
    return f"{name}: {trend}{corloc}."


def section(metrics: dict) -> Section | None:
    """The section, or None when no finished variant carries breakdowns."""
    analysed = _analysed(metrics)
    if not analysed:
        return None
    first = analysed[0][1]["breakdowns"]
    count_head = [f"{k} object{'s' if k != '1' else ''} ({first['by_count'][k]['images']} images)" for k in COUNT_BINS]
    count_rows = [[v["name"]] + [_fmt(v["breakdowns"]["by_count"][k]["mAP"]) for k in COUNT_BINS]
                  + [_fmt(v["breakdowns"]["corloc"]["value"])] for _, v in analysed]
    lo, hi = first["size_thresholds"]
    size_head = [f"{k} ({first['by_size'][k]['objects']} objects)" for k in SIZES]
    size_rows = [[v["name"]] + [_fmt(v["breakdowns"]["by_size"][k]["mAP"]) for k in SIZES] for _, v in analysed]
    protocol = first["protocol"]
    tables = [
        Table(["variant"] + count_head + ["CorLoc (1 object)"], count_rows, [[False] * 5 for _ in count_rows],
              caption=f"mAP ({protocol}) on the images with that many objects (difficult ones not counted). "
                      "CorLoc: share of one-object images whose top detection has the right class and IoU above 0.5."),
        Table(["variant"] + size_head, size_rows, [[False] * 4 for _ in size_rows],
              caption=f"mAP ({protocol}) by object size relative to the image: side sqrt(box area / image area) "
                      f"below {lo} is small, above {hi} large; other objects, and unmatched detections of other "
                      "sizes, are ignored in each column."),
    ]
    return Section(title="Breakdowns: by objects per image and by object size",
                   paragraphs=[_sentence(v["name"], v["breakdowns"]) for _, v in analysed], tables=tables,
                   figures=[Figure(FIGURE, "AP by objects per image and by object size",
                                   "One bar per variant in each group; a missing bar has no objects to score.")])


def figures(metrics: dict) -> dict[str, bytes]:
    """{FIGURE: PNG}: grouped bars of mAP per object-count bin and per size range."""
    from eval.report_figures import _new_figure, _plain, _png, variant_color

    analysed = _analysed(metrics)
    if not analysed:
        return {}
    fig = _new_figure(10.0, 3.6)
    width = 0.8 / len(analysed)
    for p, (key, groups) in enumerate((("by_count", COUNT_BINS), ("by_size", SIZES))):
        ax = fig.add_subplot(1, 2, p + 1)
        for j, (i, v) in enumerate(analysed):
            values = [v["breakdowns"][key][g]["mAP"] for g in groups]
            xs = [g + j * width for g in range(len(groups))]
            ax.bar(xs, [0.0 if x is None else x for x in values], width=width, color=variant_color(i),
                   label=_plain(v["name"]))
        ax.set_xticks([g + 0.4 - width / 2 for g in range(len(groups))])
        ax.set_xticklabels([f"{g} obj." for g in groups] if key == "by_count" else list(groups))
        ax.set_ylim(0, 1.02)
        ax.set_ylabel("mAP")
        ax.set_title("By objects per image" if key == "by_count" else "By object size (relative to the image)")
        ax.grid(True, axis="y", linewidth=0.4, alpha=0.5)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return {FIGURE: _png(fig)}
