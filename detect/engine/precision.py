"""Which mixed precision a training run uses on its device (``train.amp``, ``train.cpu_amp``).

* CUDA with ``train.amp``: float16 autocast with a ``GradScaler`` (float16's range needs loss scaling).
* CPU with ``train.cpu_amp``, on a processor with native bfloat16 matrix units (Intel AMX or
  AVX512-BF16, as oneDNN reports them): bfloat16 autocast, no scaler (bfloat16 has float32's
  exponent range). Convolutions and matrix products run in bfloat16 with float32 accumulation;
  autocast keeps losses, normalisation statistics and the weights themselves in float32.
* Anything else: float32. On a CPU without native bfloat16, autocast would emulate it and be
  slower than float32, so ``cpu_amp`` is ignored there rather than obeyed.

Inference (``detect``, ``eval --config``, ``compare``'s timings) always runs in float32.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def cpu_has_native_bf16() -> bool:
    """True when oneDNN can run bfloat16 convolutions and matmuls natively on this CPU."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a build without oneDNN
        return False


@dataclass(frozen=True)
class Precision:
    """The autocast a run uses: ``dtype`` None means plain float32."""

    device_type: str
    dtype: torch.dtype | None

    @property
    def enabled(self) -> bool:
        return self.dtype is not None

    @property
    def needs_scaler(self) -> bool:
        return self.dtype == torch.float16

    @property
    def name(self) -> str:
        return {None: "float32", torch.bfloat16: "bfloat16 autocast", torch.float16: "float16 autocast"}[self.dtype]

    def autocast(self):
        """The context the forward pass runs in."""
        return torch.autocast(self.device_type, dtype=self.dtype or torch.float32, enabled=self.enabled)


def training_precision(train_config, device: torch.device) -> Precision:
    """The precision ``train_config`` asks for, as far as ``device`` supports it (module docstring)."""
    if device.type == "cuda" and train_config.amp:
        return Precision("cuda", torch.float16)
    if device.type == "cpu" and train_config.cpu_amp and cpu_has_native_bf16():
        return Precision("cpu", torch.bfloat16)
    return Precision(device.type, None)
