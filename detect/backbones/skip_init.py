"""Build a network without drawing its random initial weights, for a checkpoint to fill in.

Loading a detector from a file builds it first, and building draws every
weight from the seeded RNG (ResNet-50-FPN Faster R-CNN: 41M numbers, ~0.5 s of
one core) only for ``load_state_dict`` to overwrite them all. Inside
:func:`skipped_init` the in-place fills of ``torch.nn.init`` (which every
torch layer's ``reset_parameters`` and torchvision's builders call) do nothing,
so parameters keep the uninitialised memory ``torch.empty`` gave them. Everything else a constructor
makes (anchor templates, buffers set to ones and zeros, the module tree) is
built as usual.

Only for a network whose every parameter and buffer is then loaded with
``load_state_dict(strict=True)``: that call refuses a file with a missing key,
so no uninitialised value survives. Training never uses it (its seeded
initialisation is unchanged). Not thread-safe: it patches module attributes
for the duration of the ``with``.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

from torch import nn

# The in-place fills of torch.nn.init: each returns its tensor unchanged while skipped.
_FILLS = ("constant_", "dirac_", "eye_", "kaiming_normal_", "kaiming_uniform_", "normal_", "ones_", "orthogonal_",
          "sparse_", "trunc_normal_", "uniform_", "xavier_normal_", "xavier_uniform_", "zeros_")


def _keep(tensor, *args, **kwargs):
    return tensor


@contextlib.contextmanager
def skipped_init() -> Iterator[None]:
    """Within the ``with``, building a module draws no initial values (see the module docstring)."""
    saved = {name: getattr(nn.init, name) for name in _FILLS}
    try:
        for name in _FILLS:
            setattr(nn.init, name, _keep)
        yield
    finally:
        for name, fn in saved.items():
            setattr(nn.init, name, fn)
