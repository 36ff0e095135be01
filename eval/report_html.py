"""Lay a :class:`eval.report.Report` out as ONE self-contained HTML page.

Every string that came from data (class names, variant and config names, file
names, error messages) passes through :func:`html.escape` here and nowhere
else, so a class named ``<script>alert(1)</script>`` shows as text. As a
second wall the page carries a Content-Security-Policy that allows no script
at all and images only from ``data:`` URIs, which is how the figures are
embedded (the page opens anywhere, offline, without its figures/ directory).
"""

from __future__ import annotations

import base64
from html import escape

_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; white-space: nowrap; }
th { background: #f3f3f3; white-space: normal; } .text { text-align: left; white-space: normal; }
td.best { font-weight: bold; background: #e8f5e9; }
td.failed { color: #b71c1c; font-weight: bold; }
caption { caption-side: bottom; text-align: left; color: #666; font-size: 0.85em; padding-top: 0.3em; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #666; font-size: 0.85em; }
.failure { color: #b71c1c; } code { background: #f6f6f6; padding: 0 0.2em; }
"""

# Figure file -> (section heading, caption). Order = order on the page.
FIGURES = {
    "pr_pooled.png": ("Precision-recall, all classes pooled",
                      "One curve per variant over the detections of every class together."),
    "pr_per_class.png": ("Precision-recall per class", "One panel per class, one curve per variant."),
    "speed_accuracy.png": ("Speed versus accuracy", "One point per variant: mAP against seconds per image."),
    "flops_accuracy.png": ("Computation versus accuracy", "One point per variant: mAP against the network's "
                           "multiply-adds per image (GFLOPs, log scale), a count that does not depend on the machine."),
    "examples.png": ("The same test images, every variant",
                     "Left: ground truth; then each variant's detections on the same images."),
}


def _table(table, cell_class=None) -> str:
    """``cell_class(r, c, text) -> str | None`` adds a CSS class to a cell."""
    head = "".join(f'<th class="text">{escape(h)}</th>' if c < table.text_columns else f"<th>{escape(h)}</th>"
                   for c, h in enumerate(table.header))
    body = []
    for r, row in enumerate(table.rows):
        cells = []
        for c, text in enumerate(row):
            classes = ["text"] if c < table.text_columns else []
            if table.bold and table.bold[r][c]:
                classes.append("best")
            extra = cell_class(r, c, text) if cell_class else None
            if extra:
                classes.append(extra)
            attr = f' class="{" ".join(classes)}"' if classes else ""
            mark = " &#9733;" if "best" in classes else ""
            cells.append(f"<td{attr}>{escape(text)}{mark}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    caption = f"<caption>{escape(table.caption)}</caption>" if table.caption else ""
    return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _embedded(name: str, title: str, caption: str, data: bytes, level: int = 2) -> str:
    uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    return (f"<h{level}>{escape(title)}</h{level}><figure><img src=\"{uri}\" alt=\"{escape(title)}\">"
            f"<figcaption>{escape(caption)}</figcaption></figure>")


def _figure(name: str, data: bytes) -> str:
    title, caption = FIGURES.get(name, (name, ""))
    return _embedded(name, title, caption, data)


def render_html(report) -> str:
    """The whole page as a string (UTF-8, no external resources)."""
    status_col = len(report.ladder.header) - 1
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(report.title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{escape(report.title)}</h1>",
        *(f"<p>{escape(line)}</p>" for line in report.summary),
        "<h2>The ladder</h2>",
        _table(report.ladder, lambda r, c, t: "failed" if c == status_col and t == "failed" else None),
    ]
    if report.ladder_notes:
        parts.append("<ul>" + "".join(f"<li>{escape(line)}</li>" for line in report.ladder_notes) + "</ul>")
    if report.failures:
        parts.append("<h2>Failures</h2><ul>")
        parts += [f'<li class="failure"><strong>{escape(name)}</strong>: {escape(reason)}</li>'
                  for name, reason in report.failures]
        parts.append("</ul>")
    parts += ["<h2>Average precision per class</h2>", _table(report.per_class)]
    for section in report.sections:
        parts.append(f"<h2>{escape(section.title)}</h2>")
        parts += [f"<p>{escape(line)}</p>" for line in section.paragraphs]
        parts += [_table(table) for table in section.tables]
        parts += [_embedded(f.name, f.title, f.caption, report.figures[f.name], level=3)
                  for f in section.figures if f.name in report.figures]
    for name in FIGURES:
        if name in report.figures:
            parts.append(_figure(name, report.figures[name]))
    parts += ["<h2>Held equal</h2>", _table(report.settings),
              "<h2>Machine</h2>", _table(report.machine), "</body></html>"]
    return "\n".join(parts) + "\n"
