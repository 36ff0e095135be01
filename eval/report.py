"""Render the comparison report (report.html, report.md, figures/) from metrics.json alone.

``detladder compare`` writes metrics.json and calls :func:`render_report`;
``detladder report METRICS_JSON --out DIR`` calls it again later without
recomputing anything. This module turns the metrics into plain-text tables
(:class:`Table`); :mod:`eval.report_html` and :mod:`eval.report_markdown`
escape and lay them out, :mod:`eval.report_figures` draws the figures. The
schema and its validation live in :mod:`eval.report_schema`.

Output directory layout::

    OUT/report.html          self-contained: figures embedded as data: URIs
    OUT/report.md            same tables; figures linked as figures/<name>.png
    OUT/figures/*.png        pr_pooled, pr_per_class, speed_accuracy, examples
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from eval.files import atomic_write_bytes, atomic_write_text
from eval.report_schema import load_metrics, validate_metrics

NA = "—"  # shown where a number does not exist (a failed variant, a class without ground truth)


@dataclass
class Table:
    """A table of plain (unescaped) strings; ``bold[r][c]`` marks the best cell of a column or row."""

    header: list[str]
    rows: list[list[str]]
    bold: list[list[bool]] = field(default_factory=list)
    caption: str = ""
    text_columns: int = 1  # the first columns hold text (left-aligned); the rest hold numbers


@dataclass
class Figure:
    """A figure of a section: its file name (a key of ``Report.figures``), heading and caption."""

    name: str
    title: str
    caption: str


@dataclass
class Section:
    """A titled part of the report after the per-class table: sentences, tables and figures, in that order.

    Each analysis (training curves, error analysis, breakdowns, proposal recall) adds one, so the two
    renderers lay out any of them the same way without knowing what they are.
    """

    title: str
    paragraphs: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)


@dataclass
class Report:
    """Everything the two renderers lay out, in reading order."""

    title: str
    summary: list[str]
    ladder: Table
    per_class: Table
    failures: list[tuple[str, str]]  # (variant name, reason)
    settings: Table
    machine: Table
    figures: dict[str, bytes]  # file name -> PNG bytes
    sections: list[Section] = field(default_factory=list)
    ladder_notes: list[str] = field(default_factory=list)  # one generated sentence per variant


@dataclass
class ReportPaths:
    html: Path
    markdown: Path
    figures: list[Path]


def _fmt(value: float | None, spec: str) -> str:
    return NA if value is None else format(value, spec)


def _fmt_seconds(value: float | None) -> str:
    if value is None:
        return NA
    return f"{value * 1000:.1f} ms" if value < 1.0 else f"{value:.2f} s"


def _fmt_params(value: int | None) -> str:
    if value is None:
        return NA
    return f"{value / 1e6:.2f} M" if value >= 1e5 else f"{value:,}"


def _fmt_gflops(value: int | None) -> str:
    return NA if value is None else f"{value / 1e9:.3g}"


def ladder_table(metrics: dict) -> Table:
    """One row per variant: the numbers the ladder is about."""
    header = ["variant", "proposal source", "region classifier", f"mAP ({metrics['protocol']})",
              "proposals s/img", "network s/img", "total s/img", "CPU s/img", "images/s", "parameters",
              "GFLOPs/img", "training time", "status"]
    rows = []
    for v in metrics["variants"]:
        spi = v["seconds_per_image"]
        total = spi["total"]
        rate = None if not total else 1.0 / total
        status = "ok" if v["status"] == "ok" else "failed"
        rows.append([v["name"], v["proposal_source"] or NA, v["region_classifier"] or NA,
                     _fmt(v["mAP"], ".3f"), _fmt_seconds(spi["proposals"]), _fmt_seconds(spi["network"]),
                     _fmt_seconds(total), _fmt_seconds(spi.get("cpu")), _fmt(rate, ".1f"), _fmt_params(v["params"]),
                     _fmt_gflops(v.get("flops")),
                     _fmt(v["train_seconds"], ".0f") + (" s" if v["train_seconds"] is not None else ""),
                     status])
    maps = [v["mAP"] for v in metrics["variants"]]
    best = max((m for m in maps if m is not None), default=None)
    bold = [[c == 3 and m is not None and m == best for c in range(len(header))] for m in maps]
    return Table(header, rows, bold, caption="Seconds per image are medians over the timed test images "
                                             "after a warm-up; proposals and network timed apart; CPU s/img is "
                                             "the process CPU time (wall far above CPU would mean the machine was busy). GFLOPs/img: "
                                             "multiply-adds of the network on one test image (proposal "
                                             "methods outside it count as time only).",
                 text_columns=3)


def per_class_table(metrics: dict) -> Table:
    """Rows = classes, columns = variants; the best AP of each class is marked."""
    variants = metrics["variants"]
    header = ["class"] + [v["name"] for v in variants]
    rows, bold = [], []
    for name in metrics["dataset"]["class_names"]:
        aps = [v["per_class"].get(name) if v["status"] == "ok" else None for v in variants]
        best = max((a for a in aps if a is not None), default=None)
        rows.append([name] + [_fmt(a, ".3f") for a in aps])
        bold.append([False] + [a is not None and a == best for a in aps])
    maps = [v["mAP"] for v in variants]
    best = max((m for m in maps if m is not None), default=None)
    rows.append(["mean (mAP)"] + [_fmt(m, ".3f") for m in maps])
    bold.append([False] + [m is not None and m == best for m in maps])
    return Table(header, rows, bold, caption="AP per class; the best variant of each class is marked. "
                                             f"{NA} = failed variant or class without ground truth.")


def _scalar(value) -> str:
    if value is None:
        return NA
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _key_value_table(mapping: dict, caption: str) -> Table:
    rows = [[str(k), _scalar(v)] for k, v in mapping.items()]
    return Table(["setting", "value"], rows, [[False, False] for _ in rows], caption, text_columns=2)


def analysis_sections(metrics: dict) -> tuple[list[Section], dict[str, bytes]]:
    """The sections after the per-class table and their figures.

    Each analysis module offers ``section(metrics) -> Section | None`` and ``figures(metrics) -> {name: PNG}``;
    the tuple below is the order on the page.
    """
    from eval import report_breakdowns, report_errors, report_proposals, report_training

    sections, figures = [], {}
    for analysis in (report_errors, report_breakdowns, report_proposals, report_training):
        section = analysis.section(metrics)
        if section is not None:
            sections.append(section)
            figures.update(analysis.figures(metrics))
    return sections, figures


def build_report(metrics: dict, base_dir: str | os.PathLike, metrics_path=None) -> Report:
    """Tables and figures of a validated metrics dict (example images resolved against base_dir)."""
    from eval.report_figures import render_figures
    from eval.report_lessons import ladder_notes

    ds = metrics["dataset"]
    ok = sum(v["status"] == "ok" for v in metrics["variants"])
    summary = [
        f"{len(metrics['variants'])} variants ({ok} finished) evaluated on split "
        f"'{ds['split']}' ({ds['num_images']} images, {len(ds['class_names'])} classes) "
        f"with the {metrics['protocol']} protocol.",
    ]
    if metrics.get("created"):
        summary.append(f"Measured {metrics['created']}.")
    if ds.get("root"):
        summary.append(f"Dataset: {ds['root']}")
    timing = metrics.get("timing") or {}
    if timing.get("torch threads") is not None:
        summary.append(f"Timed one image at a time with {timing['torch threads']} torch thread(s); "
                       "CPU seconds are given beside wall seconds.")
    if timing.get("busy"):
        summary.append(f"Warning: {timing['busy']}")
    failures = [(v["name"], v["error"] or "no reason recorded") for v in metrics["variants"] if v["status"] != "ok"]
    settings = dict(metrics["settings"])
    sections, section_figures = analysis_sections(metrics)
    return Report(
        title="detladder: the detector ladder, side by side",
        summary=summary,
        ladder=ladder_table(metrics),
        per_class=per_class_table(metrics),
        failures=failures,
        settings=_key_value_table(settings, "What every variant shares; a setting that differs between variants says so."),
        machine=_key_value_table(dict(metrics["machine"]), "Where the numbers were measured."),
        figures={**render_figures(metrics, base_dir, metrics_path), **section_figures},
        sections=sections,
        ladder_notes=ladder_notes(metrics),
    )


def render_report(metrics_path: str | os.PathLike, out_dir: str | os.PathLike) -> ReportPaths:
    """Validate ``metrics_path`` and (re-)write OUT/report.html, OUT/report.md and OUT/figures/.

    Raises ``eval.errors.InputError`` naming the bad key of a malformed metrics file.
    """
    metrics_path = Path(metrics_path)
    metrics = load_metrics(metrics_path)
    return render_metrics(metrics, metrics_path.parent, out_dir, metrics_path)


def render_metrics(metrics: dict, base_dir: str | os.PathLike, out_dir: str | os.PathLike,
                   metrics_path=None) -> ReportPaths:
    """Render an in-memory metrics dict (validated here too); files written atomically."""
    from eval.report_html import render_html
    from eval.report_markdown import render_markdown

    validate_metrics(metrics, metrics_path)
    report = build_report(metrics, base_dir, metrics_path)
    out_dir = Path(out_dir)
    figure_paths = [atomic_write_bytes(out_dir / "figures" / name, data) for name, data in report.figures.items()]
    html_path = atomic_write_text(out_dir / "report.html", render_html(report))
    md_path = atomic_write_text(out_dir / "report.md", render_markdown(report, figure_dir="figures"))
    return ReportPaths(html_path, md_path, figure_paths)
