"""``tune.html``: the trials' table, value-against-mAP scatters (log axes for log keys) and loss curves.

Built with the check page's helpers (detect/check/page.py): escaped text, embedded PNGs, no script.
A trial stopped early has no mAP; the scatters draw it as a red cross on the axis.
"""

from __future__ import annotations

from html import escape

from detect.check.page import figure_html, finite, new_axes, page_html, plain, png, table_html
from detect.check.verdict import smoothed


def _scatter(param, records: list[dict]) -> bytes:
    fig, ax = new_axes(5.2, 3.4)
    for stage, marker in (("coarse", "o"), ("fine", "s")):
        done = [r for r in records if r["stage"] == stage and r["mAP"] is not None]
        ax.scatter([r["values"][param.key] for r in done], [r["mAP"] for r in done], marker=marker, label=stage)
    stopped = [r for r in records if r["mAP"] is None]
    if stopped:
        ax.scatter([r["values"][param.key] for r in stopped], [0.0] * len(stopped), marker="x", color="tab:red",
                   label="stopped early")
    if param.log:
        ax.set_xscale("log")
    ax.set_xlabel(plain(param.key))
    ax.set_ylabel("validation mAP")
    ax.legend(loc="best", fontsize="small")
    return png(fig)


def _curves(records: list[dict]) -> bytes:
    fig, ax = new_axes(6.4, 3.8)
    positive = True
    for r in records:
        xs, ys = finite(range(1, len(r.get("losses", [])) + 1), r.get("losses", []))
        ys = smoothed(ys, beta=0.95)  # one batch's loss is noisy; the trend is what tells trials apart
        positive = positive and all(y > 0 for y in ys)
        ax.plot(xs, ys, linewidth=1, label=f"trial {r['trial']}", linestyle="-" if r["mAP"] is not None else ":")
    if positive and records:
        ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.set_ylabel("training loss (moving average)")
    ax.legend(loc="best", fontsize="x-small", ncol=2)
    return png(fig)


def render_tune_page(params, records: list[dict], best: dict | None) -> str:
    keys = [p.key for p in params]
    rows = [[str(r["trial"]), r["stage"], *(f"{r['values'][k]:.4g}" for k in keys),
             f"{r['mAP']:.4f}" if r["mAP"] is not None else "-", r["status"], f"{r['seconds']:.0f}"] for r in records]
    lead = (f"Best: trial {best['trial']}, validation mAP {best['mAP']:.4f} (best.yaml)." if best is not None
            else "No trial finished with a score.")
    parts = [f"<p>{escape(lead)}</p>",
             table_html(["trial", "stage", *keys, "mAP", "status", "seconds"], rows)]
    if records:  # no figure of nothing (a search whose budget ran out before its first trial)
        parts += [figure_html(f"{p.key} against validation mAP", _scatter(p, records)) for p in params]
        parts.append(figure_html("Training loss of every trial, smoothed (dotted: stopped early)", _curves(records)))
    return page_html("detladder tune", parts)
