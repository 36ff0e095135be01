"""``no_gc()``: the cyclic garbage collector paused while a burst of long-lived objects is made."""

from __future__ import annotations

import contextlib
import gc


@contextlib.contextmanager
def no_gc():
    """Pause cyclic garbage collection inside the ``with`` (reference counting still frees objects).

    Making hundreds of thousands of objects that live on triggers repeated full collections that
    walk all of them and free nothing: half a million result dicts of a COCO results file (measured:
    ``orjson.loads`` of a 42 MB file 2.4 s instead of 0.9 s), or the modules torch and torchvision
    build on import (~0.5 s of `detect`'s ~3 s start; benchmarks/first_detection.py).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
