"""``detladder data synth`` and ``detladder data info``."""

from __future__ import annotations

from pathlib import Path

import typer

from detect.cli.common import progress_enabled, stderr_console

app = typer.Typer(
    help="Make and inspect datasets in the PASCAL VOC layout.\n\nExample: detladder data synth --out runs/synth",
    no_args_is_help=True,
)


@app.command("synth")
def synth(
    out: Path = typer.Option(..., "--out", help="Folder to write the dataset into (VOC layout)."),
    train: int = typer.Option(500, "--train", min=0, help="Images in the train (and trainval) split."),
    test: int = typer.Option(100, "--test", min=0, help="Images in the test split."),
    seed: int = typer.Option(0, "--seed", min=0, help="Random seed; the same seed writes byte-identical files."),
    image_size: int = typer.Option(128, "--image-size", min=32, help="Side of the square images, pixels."),
    force: bool = typer.Option(False, "--force", help="Replace a non-empty --out that is not this same dataset."),
) -> None:
    """Write the synthetic shapes dataset (real JPEGs + VOC XML) that the demo and tests use.

    --out must be missing, empty, or a synth dataset made with the same options (then nothing is written);
    anything else exits 2 unless --force, which replaces the whole folder at once (built beside it, then
    renamed in). The options are recorded in OUT/synth.json.

    Example: detladder data synth --out runs/synth --train 200 --test 50 --seed 1
    """
    from rich.progress import Progress

    from detect.data.synth import make_synthetic_voc, read_synth_params, synth_params

    total = train + test
    if total == 0:
        raise typer.BadParameter("need at least one image (--train + --test > 0)")
    if read_synth_params(out) == synth_params(train, test, seed, image_size):
        print(f"{out} already holds this dataset ({total} images, {train} train, {test} test, {image_size} px, "
              f"seed {seed}); nothing written")
        return
    from eval.files import check_writable

    check_writable(out, directory=True)
    with Progress(console=stderr_console(), disable=not progress_enabled(), transient=True) as bar:
        task = bar.add_task("writing images", total=total)
        root = make_synthetic_voc(
            out, train=train, test=test, seed=seed, image_size=image_size, force=force,
            progress=lambda n: bar.update(task, completed=n),
        )
    print(f"wrote {total} images ({train} train, {test} test, {image_size} px) to {root}")


@app.command("info")
def info(
    root: Path = typer.Argument(..., help="VOC root (the folder holding Annotations/ and JPEGImages/)."),
    split: str = typer.Option("trainval", "--split", help="ImageSets/Main/<split>.txt to read."),
    check_images: bool = typer.Option(True, "--check-images/--no-check-images", help="Decode every image too."),
) -> None:
    """Summarise a split and list every problem found; exit 2 if any entry is unusable.

    Example: detladder data info runs/synth --split test
    """
    from rich.table import Table

    from detect.cli.common import stdout_console
    from detect.data.voc import VOCDataset

    dataset = VOCDataset(root, split, on_error="skip", check_images=check_images)
    s = dataset.summary()
    console = stdout_console()
    console.print(f"[bold]{s['root']}[/bold] split [bold]{split}[/bold]: {s['images']} usable images, "
                  f"{s['skipped_images']} with problems", markup=True, highlight=False)
    table = Table("class", "objects", "difficult")
    for name in s["classes"]:
        table.add_row(name, str(s["objects"][name]), str(s["difficult"][name]))
    table.add_row("all", str(sum(s["objects"].values())), str(sum(s["difficult"].values())))
    console.print(table)
    per = s["objects_per_image"]
    console.print(f"objects per image: min {per['min']}, mean {per['mean']}, max {per['max']}", highlight=False)
    if s["box_side_px"]:
        b = s["box_side_px"]
        console.print(
            f"box side sqrt(w*h), px: min {b['min']}, p25 {b['p25']}, median {b['median']}, "
            f"p75 {b['p75']}, max {b['max']}", highlight=False,
        )
    if dataset.problems:
        err = stderr_console()
        for problem in dataset.problems:
            err.print(f"problem: {problem}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2)


def register(root_app: typer.Typer) -> None:
    root_app.add_typer(app, name="data")
