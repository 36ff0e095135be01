"""The report's error-analysis section: TIDE's errors of every variant (``eval.error_analysis``).

One table (TIDE's AP@50, then the AP@50 each main and special error type costs), one sentence per
variant naming its costliest errors (generated from the numbers), and a stacked bar per variant of
the main errors.
"""

from __future__ import annotations

from eval.report import NA, Figure, Section, Table

FIGURE = "errors.png"
MAIN = ("Cls", "Loc", "Both", "Dupe", "Bkg", "Miss")
SPECIAL = ("FalsePos", "FalseNeg")
WORDS = {"Cls": "confused classes", "Loc": "mislocalised boxes", "Both": "wrong class and bad box",
         "Dupe": "duplicate detections", "Bkg": "detections on background", "Miss": "missed objects"}
COLORS = {"Cls": "#e15759", "Loc": "#f28e2b", "Both": "#b07aa1", "Dupe": "#59a14f", "Bkg": "#4e79a7",
          "Miss": "#9c755f"}


def _analysed(metrics: dict) -> list[tuple[int, dict]]:
    return [(i, v) for i, v in enumerate(metrics["variants"]) if v["status"] == "ok" and v.get("errors")]


def _fmt(value) -> str:
    return NA if value is None else f"{value:.3f}"


def _sentence(name: str, errors: dict) -> str:
    ranked = sorted(((v, k) for k, v in errors["main"].items() if v is not None and v > 0.0005), reverse=True)
    if not ranked:
        return f"{name}: no main error type costs it a measurable AP@50."
    text = f"{name}: {WORDS[ranked[0][1]]} cost the most (+{ranked[0][0]:.3f} AP@50 if fixed)"
    if len(ranked) > 1:
        text += f", then {WORDS[ranked[1][1]]} (+{ranked[1][0]:.3f})"
    return text + "."


def section(metrics: dict) -> Section | None:
    """The section, or None when no finished variant carries an error analysis."""
    analysed = _analysed(metrics)
    if not analysed:
        return None
    rows = [[v["name"], _fmt(v["errors"]["ap50"])] + [_fmt(v["errors"]["main"].get(k)) for k in MAIN]
            + [_fmt(v["errors"]["special"].get(k)) for k in SPECIAL] for _, v in analysed]
    table = Table(["variant", "AP@50 (TIDE)"] + list(MAIN) + list(SPECIAL), rows, [[False] * 10 for _ in rows],
                  caption="AP@50 gained by fixing each error type alone (TIDE, Bolya et al. 2020; equal to "
                          "tidecv 1.0.1). Cls: right box, wrong class; Loc: right class, IoU 0.1-0.5; Both: "
                          "wrong class and IoU 0.1-0.5; Dupe: a second detection of a found object; Bkg: IoU at "
                          "most 0.1 with every object; Miss: objects no detection came near. FalsePos / FalseNeg: "
                          "all false positives / all missed objects removed.")
    return Section(
        title="Errors: where each variant loses AP",
        paragraphs=[_sentence(v["name"], v["errors"]) for _, v in analysed],
        tables=[table],
        figures=[Figure(FIGURE, "Error breakdown", "AP@50 gained by fixing each main error type, stacked, "
                        "one bar per variant.")],
    )


def figures(metrics: dict) -> dict[str, bytes]:
    """{FIGURE: PNG}: one horizontal stacked bar of the main errors per variant."""
    from eval.report_figures import _new_figure, _plain, _png

    analysed = _analysed(metrics)
    if not analysed:
        return {}
    fig = _new_figure(7.5, 1.4 + 0.4 * len(analysed))
    ax = fig.add_subplot(1, 1, 1)
    names = [_plain(v["name"]) for _, v in analysed]
    left = [0.0] * len(analysed)
    for kind in MAIN:
        values = [v["errors"]["main"].get(kind) or 0.0 for _, v in analysed]
        ax.barh(names, values, left=left, color=COLORS[kind], label=kind, height=0.6)
        left = [a + b for a, b in zip(left, values)]
    ax.invert_yaxis()  # variants top to bottom in ladder order
    ax.set_xlabel("AP@50 gained by fixing (stacked)")
    ax.grid(True, axis="x", linewidth=0.4, alpha=0.5)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)  # beside the bars
    fig.tight_layout()
    return {FIGURE: _png(fig)}
