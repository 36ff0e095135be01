"""The report's training section: was any variant stopped before its loss flattened?

One table (iterations, training seconds, final smoothed loss, the change of the loss over the last
tenth of the run and the verdict of :func:`eval.training_curves.loss_flattened`), one sentence per
variant generated from those numbers, and a figure of every variant's loss (and validation mAP where
it was measured) against training seconds.
"""

from __future__ import annotations

from eval.report import NA, Figure, Section, Table
from eval.training_curves import FLAT_DROP

FIGURE = "training_curves.png"


def _trained(metrics: dict) -> list[tuple[int, dict]]:
    return [(i, v) for i, v in enumerate(metrics["variants"])
            if v["status"] == "ok" and v.get("training") and v["training"]["loss"]]


def _verdict(training: dict) -> str:
    if training["flattened"] is None:
        return "too short to tell"
    return "flattened" if training["flattened"] else "still falling"


def _sentence(name: str, training: dict) -> str:
    change = training["last_tenth_change"]
    if change is None:
        return f"{name}: {training['iterations']} iterations are too few to judge whether its loss had flattened."
    if training["flattened"]:
        return (f"{name}: its loss had flattened (the last tenth of its {training['iterations']} iterations "
                f"changed it by {change:+.1%}).")
    return (f"{name}: its loss was still falling when training stopped ({change:+.1%} over the last tenth of "
            f"{training['iterations']} iterations), so more training could raise its mAP.")


def section(metrics: dict) -> Section | None:
    """The section, or None when no variant carries a training curve (e.g. runs trained elsewhere)."""
    trained = _trained(metrics)
    if not trained:
        return None
    rows = []
    for _, v in trained:
        t = v["training"]
        change = NA if t["last_tenth_change"] is None else f"{t['last_tenth_change']:+.1%}"
        seconds = NA if v.get("train_seconds") is None else f"{v['train_seconds']:.0f} s"
        rows.append([v["name"], str(t["iterations"]), seconds, f"{t['loss'][-1]:.4f}", change, _verdict(t)])
    table = Table(["variant", "iterations", "training time", "final loss (smoothed)", "loss change, last tenth",
                   "verdict"], rows, [[False] * 6 for _ in rows],
                  caption=f"Rule: a loss has flattened when the mean of the last tenth of the iterations is less "
                          f"than {FLAT_DROP:.0%} below the mean of the tenth before it.", text_columns=1)
    return Section(
        title="Training: was any variant stopped early?",
        paragraphs=[_sentence(v["name"], v["training"]) for _, v in trained],
        tables=[table],
        figures=[Figure(FIGURE, "Training curves", "Smoothed training loss (log scale) against training seconds, "
                        "one curve per variant; validation mAP on the right where it was measured.")],
    )


def figures(metrics: dict) -> dict[str, bytes]:
    """{FIGURE: PNG}: loss against training seconds (and validation mAP when any variant logged it)."""
    from eval.report_figures import _new_figure, _plain, _png, variant_color

    trained = _trained(metrics)
    if not trained:
        return {}
    with_val = any(v["training"]["val_mAP"] for _, v in trained)
    fig = _new_figure(10.0 if with_val else 6.4, 4.2)
    ax = fig.add_subplot(1, 2 if with_val else 1, 1)
    for i, v in trained:
        t = v["training"]
        ax.plot(t["seconds"], t["loss"], color=variant_color(i), linewidth=1.4, label=_plain(v["name"]))
    if all(min(v["training"]["loss"]) > 0 for _, v in trained):
        ax.set_yscale("log")
    ax.set_xlabel("training seconds")
    ax.set_ylabel("training loss (smoothed)")
    ax.set_title("Training loss")
    ax.grid(True, linewidth=0.4, alpha=0.5)
    ax.legend(fontsize=8)
    if with_val:
        right = fig.add_subplot(1, 2, 2)
        for i, v in trained:
            t = v["training"]
            if t["val_mAP"]:
                right.plot(t["val_seconds"], t["val_mAP"], marker="o", color=variant_color(i),
                           label=_plain(v["name"]))
        right.set_ylim(0, 1.02)
        right.set_xlabel("training seconds")
        right.set_ylabel("validation mAP")
        right.set_title("Validation mAP")
        right.grid(True, linewidth=0.4, alpha=0.5)
    fig.tight_layout()
    return {FIGURE: _png(fig)}
