"""The one exception type for bad user input, shared by every package.

The CLI turns an ``InputError`` into one line on stderr and exit code 2; its
message always starts with the file it is about, so a user knows where to look.
"""

from __future__ import annotations

import os


class InputError(Exception):
    """A file or argument the user gave us is wrong: ``"<path>: <what is wrong>"``."""

    def __init__(self, path: str | os.PathLike | None, message: str):
        self.path = None if path is None else os.fspath(path)
        self.detail = message
        super().__init__(f"{self.path}: {message}" if self.path else message)

    def __reduce__(self):
        # Two-argument constructor: tell pickle how to rebuild it (worker processes raise these).
        return (type(self), (self.path, self.detail))
