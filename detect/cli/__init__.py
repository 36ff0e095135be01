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


def __getattr__(name: str):
    """``detect.cli.app``: the Typer app, imported on first use (``detect.cli.commands``)."""
    if name == "app":
        from detect.cli.commands import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
    """Entry point of the console script; returns (and exits with) the exit code.

    A plain ``eval --gt --dets`` command line runs without Typer
    (``detect.cli.eval_files``); everything else goes through the Typer app.
    Errors become exit codes the same way on both routes.
    """
    from detect.cli.eval_files import lean_options
    from eval.errors import InputError

    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    args = [a for a in args if a != "--debug"]
    code = 0
    try:
        lean = lean_options(args)
        if lean is not None:
            from detect.cli.eval_files import run

            code = run(**lean)
        else:
            from detect.cli.commands import app

            result = app(args=args, prog_name="detladder", standalone_mode=False)
            code = result if isinstance(result, int) else 0
            if code == 130:  # Typer turns KeyboardInterrupt into Exit(130) and hands back the code; no command uses 130
                _say_interrupted(args)
    except InputError as exc:
        if debug:
            raise
        _say(str(exc))
        code = 2
    except SystemExit as exc:
        code = _exit_code(exc.code)
    except KeyboardInterrupt:  # Ctrl-C outside a command
        _say_interrupted(args)
        code = 130
    except Exception as exc:  # noqa: BLE001 - the one place every failure becomes an exit code
        if _is_typer(exc, "Exit"):  # typer.Exit
            code = _exit_code(exc.exit_code)
        elif _is_typer(exc, "Abort"):  # Ctrl-C seen by an older Typer
            _say_interrupted(args)
            code = 130
        elif debug:
            raise
        elif hasattr(exc, "format_message") and hasattr(exc, "exit_code"):  # a usage error
            _say(exc.format_message() + "  (see --help)")
            code = 2
        else:
            _say(f"{exc.__class__.__name__}: {exc}" if str(exc) else exc.__class__.__name__)
            code = 1
    if argv is None:
        sys.exit(code)
    return code


def _exit_code(raw) -> int:
    return raw if isinstance(raw, int) else (0 if raw is None else 1)


def _is_typer(exc: BaseException, name: str) -> bool:
    """``exc`` is ``typer.Exit`` / ``typer.Abort``, without importing Typer when it never ran."""
    exceptions = sys.modules.get("typer.exceptions")
    return exceptions is not None and isinstance(exc, getattr(exceptions, name))
