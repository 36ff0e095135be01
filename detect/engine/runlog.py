"""``RUN/log.jsonl``: one JSON object per line (iterations, validations, notes).

On resume from iteration ``k`` the lines written after the checkpoint (records
with ``iteration > k``, from the part of the run that was lost) are dropped, so
a killed-and-resumed run's log equals an uninterrupted run's.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from eval.files import atomic_write_text


def _clean(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class RunLog:
    """Append-only JSON-lines writer; a no-op when ``enabled`` is false (ranks other than 0)."""

    def __init__(self, path: str | Path, resume_from: int = 0, enabled: bool = True):
        self.path = Path(path)
        self.enabled = enabled
        self._fh = None
        if not enabled:
            return
        kept = []
        if resume_from > 0 and self.path.is_file():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut short by the crash
                if record.get("iteration", 0) <= resume_from:
                    kept.append(line)
        atomic_write_text(self.path, "".join(line + "\n" for line in kept))
        self._fh = open(self.path, "a", encoding="utf-8")

    def write(self, record: dict) -> None:
        if self._fh is None:
            return
        self._fh.write(json.dumps({k: _clean(v) for k, v in record.items()}) + "\n")
        self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def read_log(path: str | Path) -> list[dict]:
    """Every record of a run's log."""
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
