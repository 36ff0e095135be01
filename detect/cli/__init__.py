"""The ``detladder`` command line: a thin layer over library calls.

Each subcommand lives in a module of this package, parses its arguments and
calls one library function. Heavy modules (torch, torchvision, matplotlib) are
imported inside the commands that need them, so ``detladder --help`` and
``detladder eval`` on result files start fast.

Exit codes (DESIGN.md): 0 success, 1 the work failed, 2 bad usage or bad input
(one line on stderr naming the file and what is wrong; a traceback only with
``--debug``).
"""

from __future__ import annotations

import sys

import typer

from detect.cli import compare, data, evaluate, infer, proposals, train

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
for _module in (data, proposals, train, infer, evaluate, compare):
    _module.register(app)


def _say(message: str) -> None:
    """One line on stderr: newlines inside a message would break the one-line rule."""
    line = " ".join(str(message).split())
    sys.stderr.write(f"detladder: error: {line}\n")
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
    except InputError as exc:
        if debug:
            raise
        _say(str(exc))
        code = 2
    except (typer.Exit, SystemExit) as exc:
        raw = getattr(exc, "exit_code", getattr(exc, "code", 0))
        code = raw if isinstance(raw, int) else (0 if raw is None else 1)
    except (typer.Abort, KeyboardInterrupt):
        _say("interrupted")
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
