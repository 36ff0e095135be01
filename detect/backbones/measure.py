"""What a backbone costs: parameters, FLOPs per image and CPU latency, measured on this machine.

FLOPs follow torchvision's and the papers' convention: one multiply-add counts
once. ``torch.utils.flop_counter.FlopCounterMode`` counts a multiply and an add
as two, so its total is halved; that halved count equals the ``_ops`` (GFLOPS)
of torchvision's weights metadata for every ImageNet classifier here at 224 px
(tests/detect/test_backbones_cost.py checks it). Only convolutions and matrix
products are counted (norms, activations and pooling are a few percent at most).

Latency is per image (batch 1) with a fixed, stated thread count: warm-up runs,
then the median of several timed runs, wall and process CPU seconds side by side
(wall far above CPU: the machine was busy).
"""

from __future__ import annotations

import math
import os
import statistics
import time
from typing import Callable, Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from detect.backbones import BACKBONES, build_backbone
from detect.backbones.weights import architecture


def count_params(module: nn.Module) -> int:
    """All parameters, trainable or frozen."""
    return int(sum(p.numel() for p in module.parameters()))


def count_flops(call: Callable[[], object]) -> int:
    """Multiply-adds of everything ``call()`` runs in torch (FlopCounterMode's total / 2), without autograd."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        call()
    return int(counter.get_total_flops() // 2)


def module_flops(module: nn.Module, image_size: int) -> int:
    """Multiply-adds of one forward pass of ``module`` on a (1, 3, S, S) image."""
    x = torch.zeros(1, 3, image_size, image_size)
    return count_flops(lambda: module(x))


def latency(module: nn.Module, image_size: int, runs: int = 5, warmup: int = 1) -> dict:
    """Median wall and CPU seconds of a forward pass on one (1, 3, S, S) image (threads: the caller's)."""
    x = torch.rand(1, 3, image_size, image_size, generator=torch.Generator().manual_seed(0))
    wall, cpu = [], []
    with torch.inference_mode():
        for i in range(warmup + runs):
            tick, cpu_tick = time.perf_counter(), time.process_time()
            module(x)
            if i >= warmup:
                wall.append(time.perf_counter() - tick)
                cpu.append(time.process_time() - cpu_tick)
    return {"seconds": statistics.median(wall), "cpu_seconds": statistics.median(cpu)}


def _outputs(net: nn.Module, image_size: int) -> tuple[int, list[int], list[int]]:
    """(channels, map sides, strides) of ``net``'s output maps at ``image_size``, read off a forward pass.

    A stride is the power of two nearest ``image_size / side`` (AlexNet's 128 px -> 7 px map is stride 16).
    """
    with torch.inference_mode():
        out = net(torch.zeros(1, 3, image_size, image_size))
    maps = list(out.values()) if isinstance(out, dict) else [out]
    sides = [int(m.shape[-1]) for m in maps]
    strides = [2 ** round(math.log2(image_size / side)) for side in sides]
    return int(maps[0].shape[1]), sides, strides


def backbone_row(name: str, image_size: int, runs: int = 5, warmup: int = 1) -> dict:
    """One table row: params, FLOPs, strides, channels, map sides and latency of backbone ``name``."""
    net = build_backbone(name).eval()
    channels, sides, strides = _outputs(net, image_size)
    row = {"name": name, "architecture": architecture(name), "params": count_params(net),
           "flops": module_flops(net, image_size), "strides": strides, "out_channels": channels, "map_sides": sides}
    if runs > 0:
        row.update(latency(net, image_size, runs, warmup))
    return row


def classifier_cost(arch: str, image_size: int = 224) -> tuple[int, int]:
    """(parameters, multiply-adds) of torchvision's full ImageNet classifier ``arch`` at ``image_size``."""
    from detect.backbones.trunks import torchvision_classifier

    net = torchvision_classifier(arch).eval()
    return count_params(net), module_flops(net, image_size)


def backbone_table(image_size: int = 224, names: Sequence[str] = BACKBONES, runs: int = 5, warmup: int = 1,
                   threads: int = 1, log: Callable[[str], None] | None = None) -> dict:
    """Every backbone measured at ``image_size`` with ``threads`` torch threads (what ``detladder backbones`` prints)."""
    from detect.engine.threads import torch_threads

    rows = []
    with torch_threads(threads):
        for name in names:
            if log:
                log(f"measuring {name}")
            rows.append(backbone_row(name, image_size, runs, warmup))
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {"image_size": image_size, "threads": threads, "runs": runs, "warmup": warmup,
            "load_average": [round(v, 2) for v in load] if load else None,
            "flops_convention": "multiply-adds (torchvision's GFLOPS); FlopCounterMode total / 2",
            "torch": torch.__version__, "backbones": rows}
