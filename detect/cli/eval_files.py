"""``detladder eval --gt --dets``: the result-file form, with a route that skips Typer.

Importing Typer (which imports pydantic) and every subcommand module costs
~0.25 s, a third of an evaluation of 500,000 detections. ``lean_options``
recognises the plain command line of this form (``eval`` followed only by
``--gt``, ``--dets``, ``--protocol``, ``--split``, ``--json``, ``--backend``,
each once, with a value); ``detect.cli.main`` then runs ``run`` directly.
Anything else (``--help``, ``--errors``, the model form, a missing or
repeated option, a value that looks like an option) goes through Typer,
which parses it and reports usage errors as always. Both routes call the
same functions here, so their output, files and exit codes are the same.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

_OPTIONS = {"--gt": "gt", "--dets": "dets", "--protocol": "protocol", "--split": "split", "--json": "json_out",
            "--backend": "backend"}

STAT_NAMES = (
    "AP @[.50:.95] all 100", "AP @.50 all 100", "AP @.75 all 100", "AP small", "AP medium", "AP large",
    "AR @[.50:.95] all 1", "AR all 10", "AR all 100", "AR small", "AR medium", "AR large",
)


def lean_options(args: list[str]) -> dict | None:
    """The options of a plain ``eval --gt G --dets D --protocol P [...]`` command line, or None for Typer."""
    if not args or args[0] != "eval":
        return None
    values: dict = {}
    rest, i = args[1:], 0
    while i < len(rest):
        if rest[i].startswith("--") and "=" in rest[i]:
            name, value = rest[i].split("=", 1)
            i += 1
        elif i + 1 < len(rest):
            name, value = rest[i], rest[i + 1]
            i += 2
        else:
            return None
        key = _OPTIONS.get(name)
        if key is None or key in values or not value or value.startswith("-"):
            return None
        values[key] = value
    if not {"gt", "dets", "protocol"} <= values.keys():
        return None
    for key in ("gt", "dets", "json_out"):
        if key in values:
            values[key] = Path(values[key])
    return values


def run(gt: Path, dets: Path, protocol: str, split: str = "test", json_out: Path | None = None,
        backend: str = "ours") -> int:
    """Evaluate, write ``--json`` (atomically), print the table and what was written; the exit code (0).

    The evaluator never calls BLAS, so OpenBLAS is asked (unless the user
    says otherwise) not to start one thread per core when numpy is imported:
    that alone cost ~0.05 s wall and ~0.15 s CPU of this command.
    """
    if "numpy" not in sys.modules:
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    check_output(json_out)
    result, written = evaluate_and_write(gt, dets, protocol, split, json_out, backend)
    print_table(result)
    print_written(written)
    return 0


def check_output(json_out: Path | None) -> None:
    """``--json`` must be writable: checked before the work, not after."""
    if json_out is not None:
        from eval.files import check_writable

        check_writable(json_out, directory=False, option="--json")


def evaluate_and_write(gt: Path, dets: Path, protocol: str, split: str, json_out: Path | None, backend: str):
    """``(EvalResult, [written paths])``; InputError on bad input, before anything is written."""
    from eval.file_eval import evaluate_files

    result = evaluate_files(gt, dets, protocol, split=split, backend=backend)
    written = []
    if json_out is not None:
        from eval.files import atomic_write_json

        written = [atomic_write_json(json_out, result.to_json())]
    return result, written


def print_written(written: list[Path]) -> None:
    if written:
        print("wrote " + ", ".join(f"{p}/ (devkit result files)" if p.is_dir() else str(p) for p in written))


# Environment variables that change what Rich prints (colour, width, terminal detection): with any of them set,
# the table goes through Rich itself.
_RICH_ENV = ("FORCE_COLOR", "NO_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLUMNS", "LINES", "JUPYTER_COLUMNS",
             "JUPYTER_LINES")


def plain_table(result) -> str | None:
    """The exact text Rich prints for ``print_table`` when stdout is a file or pipe, or None where Rich must run.

    Importing Rich costs ~0.03 s a process. For the common case (stdout not a
    terminal, UTF-8, no variable Rich reads, class names of printable ASCII
    without markup brackets, a table within Rich's 80 columns) the table is
    the same bytes written directly (tests/test_cli_eval.py compares both).
    """
    out = sys.stdout
    if (sys.platform == "win32" or any(v in os.environ for v in _RICH_ENV) or out is None or out.isatty()
            or (getattr(out, "encoding", None) or "").lower().replace("-", "") != "utf8" or not result.per_class):
        return None
    names = list(result.per_class)
    aps = ["-" if ap is None else f"{ap:.4f}" for ap in result.per_class.values()]
    if not all(n.isascii() and n.isprintable() and "[" not in n and "]" not in n for n in names):
        return None
    w1, w2 = max(5, *map(len, names)), max(2, *map(len, aps))
    if w1 + w2 + 7 > 80:
        return None
    lines = [f"{result.protocol} AP per class",
             "\u250f" + "\u2501" * (w1 + 2) + "\u2533" + "\u2501" * (w2 + 2) + "\u2513",
             "\u2503 " + "class".ljust(w1) + " \u2503 " + "AP".rjust(w2) + " \u2503",
             "\u2521" + "\u2501" * (w1 + 2) + "\u2547" + "\u2501" * (w2 + 2) + "\u2529"]
    lines += ["\u2502 " + n.ljust(w1) + " \u2502 " + a.rjust(w2) + " \u2502" for n, a in zip(names, aps)]
    lines.append("\u2514" + "\u2500" * (w1 + 2) + "\u2534" + "\u2500" * (w2 + 2) + "\u2518")
    if result.stats is not None:
        lines += [f"{label:<22} {value:.4f}" for label, value in zip(STAT_NAMES, result.stats)]
    m = result.mAP
    lines.append(f"mAP ({result.protocol}): " + ("n/a (no class has ground truth)" if m != m else f"{m:.4f}"))
    return "\n".join(lines) + "\n"


def print_table(result) -> None:
    """Per-class AP (and, for coco, the 12 stats) as a Rich table on stdout."""
    text = plain_table(result)
    if text is not None:
        sys.stdout.write(text)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{result.protocol} AP per class")
    table.add_column("class")
    table.add_column("AP", justify="right")
    for name, ap in result.per_class.items():
        table.add_row(name, "-" if ap is None else f"{ap:.4f}")
    console = Console(soft_wrap=True)
    console.print(table)
    if result.stats is not None:
        for label, value in zip(STAT_NAMES, result.stats):
            console.print(f"{label:<22} {value:.4f}", highlight=False)
    m = result.mAP
    console.print(f"mAP ({result.protocol}): " + ("n/a (no class has ground truth)" if m != m else f"{m:.4f}"),
                  highlight=False)
