"""The ``detladder`` command line: a thin layer over library calls.

Each subcommand lives in a module of this package, parses its arguments and
calls one library function. Heavy modules (torch, torchvision, matplotlib) are
imported inside the commands that need them, so ``detladder --help`` and
``detladder eval`` on result files start fast.

Exit codes (README.md): 0 success, 1 the work failed, 2 bad usage or bad input
(one line on stderr naming the file and what is wrong; a traceback only with
``--debug``), 130 interrupted (Ctrl-C; one line saying how to continue where a
command can: ``train --resume``, or re-running ``compare``/``demo``).
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

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


def _say(message: str) -> None:
    """One line on stderr: newlines inside a message would break the one-line rule."""
    line = " ".join(str(message).split())
    sys.stderr.write(f"detladder: error: {line}\n")
    sys.stderr.flush()


def _option_value(args: list[str], name: str) -> str | None:
    """The value of ``--name V`` or ``--name=V`` in ``args`` (the last one wins, as in the parser)."""
    value = None
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith(name + "="):
            value = arg[len(name) + 1:]
    return value


def interrupted_message(args: list[str]) -> str:
    """The line for Ctrl-C: how to continue, for the commands that can (``args`` without --debug)."""
    words = [a for a in args if not a.startswith("-")]
    command = words[0] if words else ""
    if command == "train":
        out = _option_value(args, "--out")
        if out is not None and not (Path(out) / "checkpoint.pt").is_file():
            return "interrupted before the first checkpoint; run the same command again to start over"
        return "interrupted; resume with: " + shlex.join(["detladder", *args, *([] if "--resume" in args else
                                                                             ["--resume"])])
    if command in ("compare", "demo"):
        return "interrupted; run the same command again to continue from what finished"
    return "interrupted"


def _say_interrupted(args: list[str]) -> None:
    sys.stderr.write(f"detladder: {interrupted_message(args)}\n")
    sys.stderr.flush()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns (and exits with) the exit code."""
    from eval.errors import InputError

    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    args = [a for a in args if a != "--debug"]
    code = 0
    try:
        result = app(args=args, prog_name="detladder", standalone_mode=False)
        code = result if isinstance(result, int) else 0
        if code == 130:  # Typer turns KeyboardInterrupt into Exit(130) and hands back the code; no command uses 130
            _say_interrupted(args)
    except InputError as exc:
        if debug:
            raise
        _say(str(exc))
        code = 2
    except (typer.Exit, SystemExit) as exc:
        raw = getattr(exc, "exit_code", getattr(exc, "code", 0))
        code = raw if isinstance(raw, int) else (0 if raw is None else 1)
    except (typer.Abort, KeyboardInterrupt):  # Ctrl-C outside a command, or an older Typer
        _say_interrupted(args)
        code = 130
    except Exception as exc:  # noqa: BLE001 - the one place every failure becomes an exit code
        if debug:
            raise
        if hasattr(exc, "format_message") and hasattr(exc, "exit_code"):  # a usage error
            _say(exc.format_message() + "  (see --help)")
            code = 2
        else:
            _say(f"{exc.__class__.__name__}: {exc}" if str(exc) else exc.__class__.__name__)
            code = 1
    if argv is None:
        sys.exit(code)
    return code
