"""Lay a :class:`eval.report.Report` out as Markdown with the same tables as the HTML page.

Figures are linked relatively (``figures/<name>.png``). Data strings are
escaped for both readings of a Markdown file: HTML metacharacters become
entities (many renderers pass raw HTML through) and characters that would
break a table or start emphasis get a backslash.
"""

from __future__ import annotations

from html import escape

from eval.report_html import FIGURES

_MD_SPECIAL = "\\`*_[]|#"


def md_escape(text: str) -> str:
    """Escape a data string for a Markdown table cell or paragraph (one line)."""
    text = escape(" ".join(str(text).split()), quote=False)
    return "".join("\\" + ch if ch in _MD_SPECIAL else ch for ch in text)


def _table(table) -> str:
    lines = ["| " + " | ".join(md_escape(h) for h in table.header) + " |",
             "|" + "|".join(["---" if c < table.text_columns else "---:" for c in range(len(table.header))]) + "|"]
    for r, row in enumerate(table.rows):
        cells = []
        for c, text in enumerate(row):
            cell = md_escape(text)
            if table.bold and table.bold[r][c]:
                cell = f"**{cell}** ★"
            cells.append(cell)
        lines.append("| " + " | ".join(cells) + " |")
    if table.caption:
        lines += ["", f"*{md_escape(table.caption)}*"]
    return "\n".join(lines)


def render_markdown(report, figure_dir: str = "figures") -> str:
    """The report as Markdown; figures referenced as ``{figure_dir}/<name>``."""
    parts = [f"# {md_escape(report.title)}", ""]
    parts += [md_escape(line) + "  " for line in report.summary]
    parts += ["", "## The ladder", "", _table(report.ladder), ""]
    if report.ladder_notes:
        parts += [f"- {md_escape(line)}" for line in report.ladder_notes] + [""]
    if report.failures:
        parts += ["## Failures", ""]
        parts += [f"- **{md_escape(name)}**: {md_escape(reason)}" for name, reason in report.failures]
        parts.append("")
    parts += ["## Average precision per class", "", _table(report.per_class), ""]
    for section in report.sections:
        parts += [f"## {md_escape(section.title)}", ""]
        parts += [md_escape(line) + "  " for line in section.paragraphs]
        parts += [""] if section.paragraphs else []
        for table in section.tables:
            parts += [_table(table), ""]
        for f in section.figures:
            if f.name in report.figures:
                parts += [f"### {md_escape(f.title)}", "", f"![{md_escape(f.title)}]({figure_dir}/{f.name})", "",
                          f"*{md_escape(f.caption)}*", ""]
    for name, (title, caption) in FIGURES.items():
        if name in report.figures:
            parts += [f"## {title}", "", f"![{title}]({figure_dir}/{name})", "", f"*{caption}*", ""]
    parts += ["## Held equal", "", _table(report.settings), "",
              "## Machine", "", _table(report.machine), ""]
    return "\n".join(parts)
