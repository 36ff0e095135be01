"""torchvision's ``FrozenBatchNorm2d`` in one pass, for detectors loaded to run (``detect.inference``).

torchvision's layer computes ``x * scale + shift`` in Python, two passes over
the feature map and a temporary as large as it; 53 of them in ResNet-50 cost
~0.13 s a 800x800 image on one core (~10% of the trunk). The same arithmetic is
``F.batch_norm`` with the frozen statistics (``training=False``: the running
mean and variance are always used, as the frozen layer does in either mode), a
single fused pass; it is what ``nn.BatchNorm2d`` runs in eval mode. On the CPU
the ResNet-50 trunk's features came out bit for bit the same (and 1.43 -> 1.09 s
at 800x800, one thread); other kernels may round differently (~1e-7 relative),
so training and ``build_detector`` keep torchvision's layer.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torchvision.ops.misc import FrozenBatchNorm2d


class FusedFrozenBatchNorm2d(FrozenBatchNorm2d):
    """``FrozenBatchNorm2d`` whose forward is one ``F.batch_norm`` call (same buffers, same state dict)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)


def fuse_frozen_norms(model: nn.Module) -> int:
    """Turn every ``FrozenBatchNorm2d`` of ``model`` into a :class:`FusedFrozenBatchNorm2d` in place; how many."""
    count = 0
    for module in model.modules():
        if type(module) is FrozenBatchNorm2d:
            module.__class__ = FusedFrozenBatchNorm2d
            count += 1
    return count
