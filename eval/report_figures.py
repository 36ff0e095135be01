"""The report's figures, drawn headless from a validated metrics dict.

Each ``*_figure`` function returns PNG bytes. Matplotlib is imported inside the
functions (``detladder --help`` and ``detladder eval`` never pay for it) and
drives the Agg canvas directly through ``matplotlib.figure.Figure``: no pyplot,
so no global figure state and no display is ever needed.

Every string that came from data goes through :func:`_plain` because matplotlib
reads ``$...$`` as math: a class called ``a$b`` would otherwise fail to render.
"""

from __future__ import annotations

import io
import math
import os
from pathlib import Path

import numpy as np

from eval.errors import InputError

# One colour per variant, the same in every figure (matplotlib's tab10 cycle).
_TAB10 = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
          "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
_DPI = 80


def variant_color(index: int) -> str:
    return _TAB10[index % len(_TAB10)]


def _plain(text: str) -> str:
    """Escape matplotlib's mathtext marker so data strings are drawn as typed."""
    return str(text).replace("$", r"\$")


def _new_figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=_DPI)
    FigureCanvasAgg(fig)
    return fig


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI)
    return buf.getvalue()


def _ok_variants(metrics: dict) -> list[tuple[int, dict]]:
    """(colour index, variant) for every variant that finished; the index stays stable."""
    return [(i, v) for i, v in enumerate(metrics["variants"]) if v["status"] == "ok"]


def _draw_curve(ax, curve: dict | None, color: str, label: str | None) -> None:
    if curve is None or not curve["recall"]:
        return
    ax.plot(curve["recall"], curve["precision"], color=color, linewidth=1.4, label=label)


def _style_pr_axes(ax, title: str, small: bool = False) -> None:
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_title(_plain(title), fontsize=8 if small else 11)
    ax.grid(True, linewidth=0.4, alpha=0.5)
    ax.tick_params(labelsize=6 if small else 9)
    if not small:
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")


def pr_pooled_figure(metrics: dict) -> bytes:
    """Precision-recall of every variant over all classes pooled, one line each."""
    fig = _new_figure(6.4, 4.6)
    ax = fig.add_subplot(1, 1, 1)
    for i, variant in _ok_variants(metrics):
        m = variant["mAP"]
        label = f"{variant['name']} (mAP {m:.3f})" if m is not None else variant["name"]
        _draw_curve(ax, variant["curves"]["pooled"], variant_color(i), _plain(label))
    _style_pr_axes(ax, "Precision-recall, all classes pooled")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    return _png(fig)


def pr_per_class_figure(metrics: dict) -> bytes:
    """A grid with one precision-recall panel per class, one line per variant."""
    classes = metrics["dataset"]["class_names"]
    ncols = max(1, min(5, len(classes)))
    nrows = max(1, math.ceil(len(classes) / ncols))
    fig = _new_figure(2.3 * ncols, 2.0 * nrows + 0.5)
    variants = _ok_variants(metrics)
    for k, name in enumerate(classes):
        ax = fig.add_subplot(nrows, ncols, k + 1)
        for i, variant in variants:
            curve = variant["curves"]["per_class"].get(name)
            _draw_curve(ax, curve, variant_color(i), _plain(variant["name"]) if k == 0 else None)
        _style_pr_axes(ax, name, small=True)
        if k % ncols == 0:
            ax.set_ylabel("precision", fontsize=7)
        if k >= len(classes) - ncols:
            ax.set_xlabel("recall", fontsize=7)
    if variants:
        handles, labels = fig.axes[0].get_legend_handles_labels() if fig.axes else ([], [])
        if handles:
            fig.legend(handles, labels, loc="lower center", ncol=min(5, len(handles)), fontsize=8)
    fig.tight_layout(rect=(0, 0.06 if nrows < 3 else 0.03, 1, 1))
    return _png(fig)


def _accuracy_scatter(metrics: dict, points: list[tuple[int, str, float, float]], xlabel: str, title: str,
                      decade_labels: bool = False) -> bytes:
    """mAP against a cost (log x when every cost is positive), one labelled point per (colour, name, x, mAP)."""
    fig = _new_figure(6.4, 4.4)
    ax = fig.add_subplot(1, 1, 1)
    for i, name, x, m in points:
        ax.scatter([x], [m], s=60, color=variant_color(i), zorder=3)
        ax.annotate(_plain(name), (x, m), textcoords="offset points", xytext=(6, 5), fontsize=9)
    xs = [p[2] for p in points]
    if xs and min(xs) > 0:
        ax.set_xscale("log")
        ax.set_xlim(min(xs) / 2.0, max(xs) * 3.0)
        if decade_labels:
            from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

            ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))  # 0.1, 0.2, 0.5, 1, ...: labels within a decade
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))  # 0.1 rather than 10^-1
            ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_ylim(0, 1.05)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"mAP ({_plain(metrics['protocol'])})")
    ax.set_title(title)
    ax.grid(True, linewidth=0.4, alpha=0.5)
    fig.tight_layout()
    return _png(fig)


def speed_accuracy_figure(metrics: dict) -> bytes:
    """mAP against seconds per image (log scale when every time is positive), one point per variant."""
    points = [(i, v["name"], v["seconds_per_image"]["total"], v["mAP"]) for i, v in _ok_variants(metrics)
              if v["seconds_per_image"]["total"] is not None and v["mAP"] is not None]
    return _accuracy_scatter(metrics, points, "seconds per image (proposals + network)",
                             "Speed versus accuracy (up and to the left is better)")


def flops_accuracy_figure(metrics: dict) -> bytes | None:
    """mAP against the network's GFLOPs per image (log scale), one point per variant; None when none has FLOPs."""
    points = [(i, v["name"], v["flops"] / 1e9, v["mAP"]) for i, v in _ok_variants(metrics)
              if v.get("flops") and v["mAP"] is not None]
    if not points:
        return None
    return _accuracy_scatter(metrics, points, "GFLOPs per image (multiply-adds of the network)",
                             "Computation versus accuracy (up and to the left is better)", decade_labels=True)


def _load_example(base_dir: Path, example: dict, index: int, metrics_path) -> np.ndarray:
    """An example image as an HxWx3 uint8 array; one InputError naming the key if unusable."""
    from PIL import Image, UnidentifiedImageError

    file = base_dir / example["file"]
    try:
        with Image.open(file) as img:
            return np.asarray(img.convert("RGB"))
    except FileNotFoundError:
        raise InputError(metrics_path, f"key examples[{index}].file: image not found: {example['file']}") from None
    except (OSError, UnidentifiedImageError):
        raise InputError(metrics_path, f"key examples[{index}].file: not a readable image: {example['file']}") from None


def _draw_boxes(ax, boxes: list[dict], class_index: dict, show_score: bool) -> None:
    from matplotlib.patches import Rectangle

    for det in boxes:
        x1, y1, x2, y2 = det["box"]
        color = _TAB10[class_index.get(det["label"], 0) % len(_TAB10)]
        ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor=color, linewidth=1.3))
        text = f"{det['label']} {det['score']:.2f}" if show_score else det["label"]
        ax.text(x1, y1, _plain(text), fontsize=5.5, color="white", va="bottom",
                bbox={"facecolor": color, "edgecolor": "none", "pad": 0.6, "alpha": 0.85})


def examples_figure(metrics: dict, base_dir: str | os.PathLike, metrics_path=None) -> bytes | None:
    """Rows = the example test images; columns = ground truth, then each variant's detections.

    Returns None when metrics.json holds no example images.
    """
    examples = metrics["examples"]
    if not examples:
        return None
    base_dir = Path(base_dir)
    variants = list(enumerate(metrics["variants"]))
    class_index = {name: k for k, name in enumerate(metrics["dataset"]["class_names"])}
    ncols, nrows = 1 + len(variants), len(examples)
    fig = _new_figure(1.9 * ncols, 1.95 * nrows + 0.2)
    for r, example in enumerate(examples):
        image = _load_example(base_dir, example, r, metrics_path)
        columns = [("ground truth", None, example["ground_truth"])]
        columns += [(v["name"], v, v["examples"].get(example["image_id"], [])) for _, v in variants]
        for c, (title, variant, boxes) in enumerate(columns):
            ax = fig.add_subplot(nrows, ncols, r * ncols + c + 1)
            ax.imshow(image, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if variant is not None and variant["status"] != "ok":
                ax.text(0.5, 0.5, "failed", transform=ax.transAxes, ha="center", va="center",
                        color="white", fontsize=10, bbox={"facecolor": "#d62728", "edgecolor": "none"})
            else:
                _draw_boxes(ax, boxes, class_index, show_score=variant is not None)
            if r == 0:
                ax.set_title(_plain(title), fontsize=8)
            if c == 0:
                ax.set_ylabel(_plain(example["image_id"]), fontsize=7)
    fig.tight_layout(pad=0.4)
    return _png(fig)


def render_figures(metrics: dict, base_dir: str | os.PathLike, metrics_path=None) -> dict[str, bytes]:
    """All figures as {file name: PNG bytes}; the examples figure only when there are examples."""
    figures = {
        "pr_pooled.png": pr_pooled_figure(metrics),
        "pr_per_class.png": pr_per_class_figure(metrics),
        "speed_accuracy.png": speed_accuracy_figure(metrics),
    }
    flops = flops_accuracy_figure(metrics)
    if flops is not None:
        figures["flops_accuracy.png"] = flops
    examples = examples_figure(metrics, base_dir, metrics_path)
    if examples is not None:
        figures["examples.png"] = examples
    return figures
