"""``detladder backbones``: every backbone's parameters, FLOPs, output and CPU latency, as a table.

Thin: parses the options, calls :func:`detect.backbones.measure.backbone_table`
and prints it (and writes it as JSON with ``--json``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def backbones_command(
    image_size: int = typer.Option(224, "--image-size", min=32, max=4096, help="Square input side in pixels."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the table here as JSON."),
    runs: int = typer.Option(5, "--runs", min=0, help="Timed forward passes per backbone (0: no timing)."),
    threads: int = typer.Option(1, "--threads", min=1, help="Torch CPU threads while timing."),
    names: list[str] = typer.Option([], "--name", help="Only these backbones (repeatable; default: all)."),
) -> None:
    """Measure every backbone: parameters, FLOPs per image, output stride and channels, CPU latency.

    FLOPs count one multiply-add once (torchvision's GFLOPS). Latency: batch 1, one warm-up
    pass, the median of --runs passes with --threads torch threads, wall and CPU seconds.
    No weights are needed (random init). docs/backbones.md explains the columns.

    Example: detladder backbones --image-size 600 --json backbones.json
    """
    from detect.backbones import BACKBONES, check_name
    from detect.backbones.measure import backbone_table
    from detect.cli.common import stderr_console

    for name in names:
        check_name(name, key="--name")
    if json_out is not None and json_out.is_dir():
        from eval.errors import InputError

        raise InputError(json_out, "--json names a directory; give a file name")
    console = stderr_console()
    table = backbone_table(image_size, names or BACKBONES, runs=runs, threads=threads,
                           log=lambda m: console.print(m, style="dim"))
    print_table(table)
    if json_out is not None:
        from eval.files import atomic_write_json

        atomic_write_json(json_out, table)
        typer.echo(f"json: {json_out}")


def _fmt_ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.1f}"


def print_table(table: dict) -> None:
    """The measured table on stdout (Rich; plain text when piped)."""
    from rich.table import Table

    from detect.cli.common import stdout_console

    timed = table["runs"] > 0
    load = table["load_average"]
    title = (f"Backbones at {table['image_size']} px, batch 1, {table['threads']} torch thread(s)"
             + (f", load average {load[0]:.2f}" if load else ""))
    out = Table(title=title)
    out.add_column("backbone", no_wrap=True)
    for column in ("params M", "GFLOPs", "stride", "ch") + (("ms", "CPU ms") if timed else ()):
        out.add_column(column, justify="right", no_wrap=True)
    for row in table["backbones"]:
        strides = row["strides"]
        stride = str(strides[0]) if len(strides) == 1 else f"{min(strides)}-{max(strides)}"
        cells = [row["name"], f"{row['params'] / 1e6:.2f}", f"{row['flops'] / 1e9:.3f}", stride,
                 str(row["out_channels"])]
        if timed:
            cells += [_fmt_ms(row.get("seconds")), _fmt_ms(row.get("cpu_seconds"))]
        out.add_row(*cells)
    console = stdout_console()
    console.print(out)
    console.print("GFLOPs: multiply-adds per image, backbone alone (torchvision's convention). stride: of each "
                  "output map (a range: FPN levels). ms: median wall time per image after a warm-up; "
                  "CPU ms far below it means the machine was busy.")


def register(app: typer.Typer) -> None:
    """Add the top-level ``backbones`` command."""
    app.command("backbones")(backbones_command)
