"""``detladder eval``: mAP of result files (``--gt/--dets``) or of a trained model (``--config/--weights``).

Thin: parse, call ``eval.file_eval.evaluate_files`` (through
``detect.cli.eval_files``, which ``detect.cli.main`` also runs without Typer
for a plain result-file command line) or ``detect.model_eval.evaluate_model``,
write the JSON, print a table. The result-file form imports neither torch
nor anything from ``detect`` beyond the CLI, so it starts fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from detect.cli.eval_files import check_output, evaluate_and_write, print_table, print_written

PROTOCOL_HELP = "voc07 (11-point, exact tenths), voc12 (area under the precision envelope) or coco (the 12 COCOeval numbers)"

def register(app: typer.Typer) -> None:
    """Add the top-level ``eval`` command."""
    app.command("eval")(eval_command)


def eval_command(
    gt: Optional[Path] = typer.Option(None, "--gt", help="Ground truth: a VOC root or a COCO annotation JSON."),
    dets: Optional[Path] = typer.Option(
        None, "--dets", help="Detections: a directory of comp4_det_<split>_<class>.txt files or a COCO results JSON."),
    protocol: Optional[str] = typer.Option(None, "--protocol", help=PROTOCOL_HELP),
    split: str = typer.Option("test", "--split", help="Split of a VOC root (ImageSets/Main/<split>.txt)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write {protocol, mAP, per_class[, stats]} here."),
    backend: str = typer.Option("ours", "--backend", help="ours, or pycocotools (coco protocol on COCO JSON only)."),
    config: Optional[Path] = typer.Option(None, "--config", help="Model form: the model's YAML config."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="Model form: model.pt of a run."),
    data: Optional[Path] = typer.Option(None, "--data", help="Model form: the VOC root to evaluate on."),
    set_: Optional[list[str]] = typer.Option(None, "--set", metavar="KEY=VALUE",
                                             help="Model form: config override (repeatable)."),
    device: Optional[str] = typer.Option(None, "--device", help="Model form: cpu, cuda, cuda:1, ..."),
    errors: bool = typer.Option(False, "--errors", help="Also TIDE's error analysis: the AP@50 gained by fixing "
                                "each error type, as \"errors\" in the JSON and a table."),
) -> None:
    """Compute per-class AP and mAP of result files, or of a trained model on a dataset.

    Example: detladder eval --gt data/VOC2007 --dets results/ --split test --protocol voc07 --json ap.json

    Example: detladder eval --gt instances_val.json --dets results.json --protocol coco --json ap.json

    Example: detladder eval --config configs/ladder/faster_rcnn.yaml --weights runs/frcnn/model.pt --data data/VOC2007
    --split test --protocol voc07 --json ap.json
    """
    files_form = gt is not None or dets is not None
    model_form = any(v is not None for v in (config, weights, data)) or bool(set_) or device is not None
    if files_form == model_form:
        raise typer.BadParameter(
            "give either --gt GT --dets DETS (result files) or --config CFG --weights CKPT --data ROOT (a model), "
            + ("not both" if files_form else "one of the two"))
    if protocol is None:
        raise typer.BadParameter(f"--protocol is required: {PROTOCOL_HELP}")
    check_output(json_out)  # before the work, not after
    if files_form:
        if gt is None or dets is None:
            raise typer.BadParameter("the result-file form needs both --gt and --dets")
        result, written = evaluate_and_write(gt, dets, protocol, split, json_out, backend)
    else:
        if config is None or weights is None or data is None or json_out is None:
            raise typer.BadParameter("the model form needs --config, --weights, --data and --json")
        from detect.cli.common import progress_enabled
        from detect.model_eval import evaluate_model, result_paths

        result = evaluate_model(config, weights, data, split, protocol, json_out, overrides=list(set_ or []),
                                device=device, progress=progress_enabled())
        if not json_out.exists():
            from eval.files import atomic_write_json

            atomic_write_json(json_out, result.to_json())
        voc_dir, coco_json = result_paths(json_out)
        written = [json_out] + [p for p in (voc_dir, coco_json) if p.exists()]
    if errors:
        from eval.error_analysis import analyse_error_files

        # the model form evaluates the devkit files it wrote beside --json
        analysis = analyse_error_files(gt, dets, split) if files_form else analyse_error_files(
            data, result_paths(json_out)[0], split)
        if json_out is not None:
            from eval.files import atomic_write_json

            atomic_write_json(json_out, {**result.to_json(), "errors": analysis.to_json()})
    print_table(result)
    if errors:
        _print_errors(analysis)
    print_written(written)


def _print_errors(analysis) -> None:
    """TIDE's main and special errors (AP@50 points gained by fixing each) as a Rich table on stdout."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="TIDE errors: AP@50 gained by fixing each type")
    for name in (*analysis.main, *analysis.special):
        table.add_column(name, justify="right")
    values = [*analysis.main.values(), *analysis.special.values()]
    table.add_row(*("-" if v != v else f"{v:.4f}" for v in values))
    table.add_row(*(str(analysis.counts[k]) for k in analysis.main), "", "")
    console = Console(soft_wrap=True)
    console.print(table)
    ap = analysis.ap50
    console.print("TIDE AP@50 (101-point): " + ("n/a" if ap != ap else f"{ap:.4f}") + "; second row: how many",
                  highlight=False)
