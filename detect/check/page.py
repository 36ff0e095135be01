"""``check.html`` (and the helpers ``tune``'s page shares): one self-contained, escaped HTML page.

As the comparison report (eval/report_html.py): every string that came from a
user or a dataset goes through :func:`html.escape`, figures are PNGs embedded
as ``data:`` URIs, and a Content-Security-Policy allows no script at all.
Figures are drawn on matplotlib's Agg canvas (no pyplot, no display).
"""

from __future__ import annotations

import base64
import io
import math
from html import escape

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; padding: 0 1em; }
h2 { margin-top: 1.6em; border-bottom: 1px solid #ddd; } table { border-collapse: collapse; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; } th { background: #f3f3f3; }
.pass { color: #1b5e20; font-weight: bold; } .warn { color: #e65100; font-weight: bold; }
.fail { color: #b71c1c; font-weight: bold; } figure img { max-width: 100%; border: 1px solid #eee; }
"""


def plain(text) -> str:
    """A string as matplotlib should draw it: its mathtext marker ``$`` escaped."""
    return str(text).replace("$", r"\$")


def new_axes(width: float = 6.4, height: float = 3.6):
    """(figure, axes) on an Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot(1, 1, 1)


def png(fig) -> bytes:
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def finite(xs, ys) -> tuple[list, list]:
    """The (x, y) pairs whose y is a finite number."""
    pairs = [(x, y) for x, y in zip(xs, ys) if y is not None and math.isfinite(y)]
    return [x for x, _ in pairs], [y for _, y in pairs]


def figure_html(title: str, data: bytes) -> str:
    uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    return f'<figure><img src="{uri}" alt="{escape(title)}"><figcaption>{escape(title)}</figcaption></figure>'


def table_html(header: list[str], rows: list[list[str]], status_column: int | None = None) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = [f'<td class="{escape(t)}">{escape(t)}</td>' if c == status_column else f"<td>{escape(t)}</td>"
                 for c, t in enumerate(row)]
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def page_html(title: str, parts: list[str]) -> str:
    """A whole page around already-escaped ``parts``."""
    return "\n".join(["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
                      f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
                      f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>",
                      f"<h1>{escape(title)}</h1>", *parts, "</body></html>"]) + "\n"


def _overfit_figure(curve: dict) -> bytes:
    fig, ax = new_axes()
    xs, ys = finite(curve["x"], curve["y"])
    ax.plot(xs, ys, color="tab:blue")
    if ys and min(ys) > 0:
        ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.set_ylabel("training loss")
    ax.set_title("Overfitting a few images")
    return png(fig)


def _sweep_figure(curve: dict) -> bytes:
    fig, ax = new_axes()
    xs, ys = finite(curve["x"], curve["y"])
    ax.plot(xs, ys, color="tab:blue", label="loss")
    ax.set_xscale("log")
    if ys and ys[0] > 0 and max(ys) > 4 * ys[0]:  # keep the shape before the explosion readable
        ax.set_ylim(0, 4 * ys[0])
    if curve.get("stop") is not None:
        ax.axvline(curve["x"][curve["stop"]], color="tab:red", linestyle="--", label="stopped: exploded")
    if curve.get("suggested"):
        ax.axvline(curve["suggested"], color="tab:green", linestyle=":", label="suggested")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    ax.set_title("Learning-rate sweep")
    ax.legend(loc="best")
    return png(fig)


def render_page(report: dict) -> str:
    """check.html from ``CheckReport.to_json()``."""
    rows = [[c["name"], c["status"], c["measured"], c["expected"], c["hint"] if c["status"] != "pass" else ""]
            for c in report["checks"]]
    parts = [f"<p>Config {escape(report['config'])} ({escape(report['rung'])}): "
             f'<span class="{escape(report["status"])}">{escape(report["status"])}</span></p>',
             table_html(["check", "verdict", "measured", "expected", "hint"], rows, status_column=1)]
    for c in report["checks"]:
        parts.append(f"<h2>{escape(c['name'])}</h2>")
        parts += [f"<p>{escape(line)}</p>" for line in c["details"]]
        if "loss" in c["curves"]:
            parts.append(figure_html("Overfit: loss per iteration", _overfit_figure(c["curves"]["loss"])))
        if "sweep" in c["curves"]:
            parts.append(figure_html("Loss against learning rate", _sweep_figure(c["curves"]["sweep"])))
    return page_html("detladder check", parts)
