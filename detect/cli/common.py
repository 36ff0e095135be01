"""Small helpers shared by the CLI modules: consoles, progress bars, JSON output."""

from __future__ import annotations

import os
import sys


def stderr_console():
    """A Rich console on stderr (progress and tables for humans; stdout stays clean)."""
    from rich.console import Console

    return Console(stderr=True)


def progress_enabled() -> bool:
    """Progress bars only when stderr is a terminal, so errors in scripts stay one line."""
    return sys.stderr.isatty() and os.environ.get("DETLADDER_NO_PROGRESS", "") == ""


def stdout_console():
    """A Rich console on stdout for results (tables); plain text when piped."""
    from rich.console import Console

    return Console(soft_wrap=True)
