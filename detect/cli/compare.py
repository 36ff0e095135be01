"""``detladder compare``, ``detladder report`` and ``detladder demo``: the ladder side by side.

Thin wrappers: each parses its arguments, calls one library function
(:func:`detect.compare.compare`, :func:`eval.report.render_report`,
:func:`detect.demo.run_demo`) and prints where the report is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def report_command(
    metrics_json: Path = typer.Argument(..., help="metrics.json written by `detladder compare`."),
    out: Path = typer.Option(..., "--out", help="Directory for report.html, report.md and figures/."),
) -> None:
    """Re-render report.html and report.md from a metrics.json, without recomputing anything.

    Example: detladder report runs/demo/compare/metrics.json --out runs/demo/report2
    """
    from eval.files import check_writable
    from eval.report import render_report

    check_writable(out, directory=True)
    paths = render_report(metrics_json, out)
    typer.echo(f"report: {paths.html}")
    typer.echo(f"markdown: {paths.markdown}")


def compare_command(
    ctx: typer.Context,
    data: Path = typer.Option(..., "--data", help="Dataset root (VOC layout)."),
    configs: Optional[list[Path]] = typer.Option(None, "--configs", metavar="CFG...", help="Config files, one per variant (repeat or "
                                                 "list); may be left out when --results is given."),
    results: list[str] = typer.Option([], "--results", metavar="NAME=PATH", help="Result files of any detector "
                                      "as one more variant: a COCO results JSON or a folder of "
                                      "comp4_det_<split>_<class>.txt files (repeatable)."),
    out: Path = typer.Option(..., "--out", help="Output directory: one run per variant, metrics.json, the report."),
    train: bool = typer.Option(False, "--train", help="Train variants even when OUT/<name> holds a model.pt "
                               "that compare did not train (without it, such a run is loaded)."),
    split: str = typer.Option("test", "--split", help="Split to evaluate and time on."),
    protocol: Optional[str] = typer.Option(None, "--protocol", help="voc07, voc12 or coco (default: the first config's)."),
    overrides: list[str] = typer.Option([], "--set", help="key=value applied to every config (repeatable)."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda, cuda:1 ... (default: cuda when present)."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="Torch CPU threads for training and "
                                          "timing (default: all cores to train, one to time)."),
    jobs: int = typer.Option(1, "--jobs", min=1, help="Train this many variants at once on the CPU, each in "
                             "its own process with cores/jobs threads, before timing any (2 suits a 2-core "
                             "machine: several ops are single-threaded)."),
) -> int:
    """Train (or load), evaluate and time each config on the same data; write metrics.json and the report.

    A re-run skips variants that already finished with the same config (delete
    OUT/<name> to redo one); a variant whose config changed is trained again; an
    interrupted training resumes. A variant that fails gets a "failed" row with
    the reason while the others still run, and the exit code is 1.

    Result files (--results) are evaluated on the same images; a bad one becomes a failed row, the
    report is written all the same, and the exit code is 2 with one line naming the file.

    Example: detladder compare --data runs/demo/data --configs configs/ladder/fast_rcnn.yaml
    configs/ladder/faster_rcnn.yaml --out runs/cmp

    Example: detladder compare --data runs/demo/data --results mine=dets.json --results theirs=voc_dets/ --out runs/cmp
    """
    from detect.cli.common import progress_enabled
    from detect.compare import compare, print_summary
    from detect.result_variants import parse_results_option
    from eval.errors import InputError

    # `--configs a.yaml b.yaml` (the spelling docs/report.md uses): click keeps the values after
    # the first as extra arguments; an unknown option among them is a usage error.
    extra = list(ctx.args)
    bad = [a for a in extra if a.startswith("-")]
    if bad:
        raise typer.BadParameter(f"unknown option {bad[0]}")
    parsed = [parse_results_option(value) for value in results]  # NAME=PATH checked before any work
    metrics = compare(data, list(configs or []) + [Path(a) for a in extra], out, train=train, split=split,
                      protocol=protocol, overrides=overrides, device=device, progress=progress_enabled(),
                      threads=threads, results=parsed, jobs=jobs)
    code = print_summary(metrics, out)
    names = {name for name, _ in parsed}
    bad = [v for v in metrics["variants"] if v["name"] in names and v["status"] != "ok"]
    if bad:  # bad result files are bad input: its message names the file
        raise InputError(None, bad[0]["error"])
    return code


def demo_command(
    out: Optional[Path] = typer.Option(None, "--out", help="Where the data, the runs and the report go "
                                       "(default runs/demo, or runs/demo-quick with --quick)."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda ... (default: cuda when present)."),
    quick: bool = typer.Option(False, "--quick", help="A smaller dataset and shorter schedules: the same "
                               "report in about a quarter of the time, with lower mAPs."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="Torch CPU threads for training and "
                                          "timing (default: one per training process, one to time)."),
    jobs: Optional[int] = typer.Option(None, "--jobs", min=1, help="Rungs trained at once, one process "
                                       "each (default: 2 on a CPU with 2 or more cores; 1 on a GPU)."),
) -> int:
    """Synthesise the default dataset, train and compare the five ladder rungs, write the report.

    Needs no data, no weights and no network. On a 2-core CPU with bfloat16 units the full demo takes
    about 7 minutes and --quick about 2 (docs/report.md gives the measured figures).
    Re-running the same command continues from what finished.

    Example: detladder demo --quick
    """
    from detect.cli.common import progress_enabled
    from detect.compare import print_summary
    from detect.demo import run_demo

    from eval.files import check_writable

    out = check_writable(out or Path("runs/demo-quick" if quick else "runs/demo"), directory=True)
    metrics, compare_dir = run_demo(out, device=device, progress=progress_enabled(), quick=quick, threads=threads,
                                    jobs=jobs)
    return print_summary(metrics, compare_dir)


def register(app) -> None:
    """Add this module's commands to the root app."""
    app.command("compare", context_settings={"allow_extra_args": True})(compare_command)
    app.command("report")(report_command)
    app.command("demo")(demo_command)
