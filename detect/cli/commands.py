"""The ``detladder`` Typer app: every subcommand registered, global options, an epilog on every --help.

Built on first use (``detect.cli.app``), since importing Typer and the
subcommand modules costs ~0.25 s that a plain ``detladder eval --gt --dets``
does not need (``detect.cli.eval_files``).
"""

from __future__ import annotations

import typer

from detect.cli import backbones, check, compare, data, evaluate, infer, proposals, train

app = typer.Typer(
    name="detladder",
    help=(
        "Region-based detectors from regression to Faster R-CNN on one backbone, "
        "one mAP calculator and one report.\n\n"
        "Example: detladder demo --out runs/demo"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

# Each module adds its own commands; the order here is the order in --help.
for _module in (data, proposals, train, infer, evaluate, compare, backbones, check):
    _module.register(app)

GLOBAL_EPILOG = ("Add --debug to any command to see the full traceback of an error; "
                 "`detladder --version` prints the version.")


def _tell_every_command(typer_app: typer.Typer, epilog: str) -> None:
    """Give every command (and group) without an epilog this one, so each --help names --debug."""
    for info in typer_app.registered_commands:
        info.epilog = info.epilog or epilog
    for group in typer_app.registered_groups:
        group.epilog = group.epilog if isinstance(group.epilog, str) else epilog
        _tell_every_command(group.typer_instance, epilog)


_tell_every_command(app, GLOBAL_EPILOG)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("detladder")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def _print_version(value: bool) -> None:
    if value:
        print(f"detladder {_version()}")
        raise typer.Exit()


@app.callback()
def _global_options(
    debug: bool = typer.Option(
        False, "--debug",
        help="On an error, show the full traceback instead of one line (accepted anywhere on the command line)."),
    version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """Options before the command (the app's help text is ``typer.Typer(help=...)`` above)."""
    # main() takes --debug out of the arguments wherever it stands, before Typer parses them;
    # it is declared here so that the top-level --help documents it.
    del debug, version
