"""Torch's CPU thread count for a block of work, and a busy-machine test for what was timed there.

Torch's OpenMP pool waits on its slowest thread, so on shared cores a second busy process makes a
two-thread run several times slower (measured on a 2-core machine: 8x per training iteration, 70x on
a per-image latency). Timing therefore uses a fixed, stated thread count — one by default, like the
single-image latencies the papers give — and records CPU time beside wall time: when the process
waited for a core, wall time runs ahead of CPU time, which says the machine was busy.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

#: Median wall/CPU ratio per image above which timing counts as disturbed (one thread never does
#: more than one second of CPU per wall second; a quiet machine measures ratios of 1.00-1.05).
BUSY_WALL_PER_CPU = 1.25


@contextlib.contextmanager
def torch_threads(count: int | None) -> Iterator[int]:
    """Run the block with ``count`` intra-op threads (None: leave torch's setting); yields the count in force."""
    import torch

    before = torch.get_num_threads()
    if count is None:
        yield before
        return
    if count < 1:
        raise ValueError(f"thread count must be at least 1, not {count}")
    torch.set_num_threads(count)
    try:
        yield count
    finally:
        torch.set_num_threads(before)


def busy_verdict(wall_per_cpu: float | None, threads: int) -> str | None:
    """A one-sentence warning when timings were disturbed by other work, else None.

    The signal is the median wall/CPU ratio of the timed images: for one thread, above
    :data:`BUSY_WALL_PER_CPU` means the process waited for a core. (The load average is recorded too,
    but it is no test: right after training it still counts the training's own threads.) With several
    threads the ratio has no fixed undisturbed value, so no verdict is given.
    """
    if wall_per_cpu is None or threads != 1 or wall_per_cpu <= BUSY_WALL_PER_CPU:
        return None
    return (f"The machine was busy while timing: wall time ran {wall_per_cpu:.2f}x the CPU time per image "
            "with one thread, so the seconds per image are inflated. Re-run on an otherwise idle machine "
            "for figures to quote.")
