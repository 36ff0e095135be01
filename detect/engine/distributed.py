"""torch.distributed helpers: one code path from 1 process to ``torchrun --nproc_per_node=K``.

``torchrun`` sets ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``; :func:`setup` then joins
the process group (NCCL on GPU, gloo on CPU). Without them everything is a
no-op and the run is rank 0 of 1. Only rank 0 writes files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from eval.errors import InputError


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def setup(device: torch.device) -> DistInfo:
    """Join the process group torchrun describes (if any) and return this process's place in it."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def main_first(info: DistInfo, fn):
    """``fn()`` on rank 0, then on the other ranks (e.g. fill a cache once, then read it)."""
    if info.is_main:
        out = fn()
    barrier(info)
    if not info.is_main:
        out = fn()
    return out


def gather_objects(info: DistInfo, obj):
    """Every rank's ``obj`` in rank order on every rank (a list of one without distribution)."""
    if not info.enabled:
        return [obj]
    out = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(info: DistInfo, obj):
    """Rank 0's ``obj`` on every rank."""
    if not info.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def resolve_device(device: str | None = "auto") -> torch.device:
    """``auto``: this process's CUDA device when there is one, else the CPU.

    A device that is not a device (``--device gpu0``) or that this machine lacks
    (``cuda`` without a GPU, ``cuda:3`` with two) raises ``InputError`` before any work.
    """
    if device is None or device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise InputError("--device", f"{device!r} is not a device; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError("--device", f"{device!r}: no CUDA GPU is usable on this machine; use cpu or auto")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise InputError("--device", f"{device!r}: this machine has {torch.cuda.device_count()} CUDA GPU(s), "
                                         f"numbered from 0")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise InputError("--device", f"{device!r}: Apple's MPS is not usable on this machine; use cpu or auto")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise InputError("--device", f"{device!r}: detladder runs on cpu or cuda")
    return dev
