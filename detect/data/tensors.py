"""Image arrays to model tensors: the one conversion training, ``detect`` and ``eval --config`` share."""

from __future__ import annotations

import numpy as np
import torch


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """HxWx3 uint8 RGB -> (3, H, W) float32 in [0, 1]."""
    if not (image.flags.writeable and image.flags.c_contiguous):  # flipped views, read-only buffers
        image = np.array(image)
    return torch.from_numpy(image).permute(2, 0, 1).float().div_(255.0)
