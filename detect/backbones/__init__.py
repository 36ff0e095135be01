"""Backbones: the one feature extractor every rung of a comparison shares.

``build_backbone(name, ...) -> nn.Module`` with ``.out_channels`` (int),
``.featmap_names`` (the feature maps a RoI pooler reads) and, for FPNs,
``.num_feature_maps`` (all maps, the RPN's anchors need one size list each). ``forward(x)`` takes
(B, 3, H, W) float normalised images and returns a (B, C, H/s, W/s) tensor
(single-map backbones, stride ``s``) or an ordered dict of FPN levels.

Names (:data:`BACKBONES`): ``tiny`` (6 conv-BN-ReLU blocks, widths w-w-2w-2w-4w-4w,
stride 8: trains in minutes on a CPU at 128 px), and cut from torchvision's
classifier of the same name (:mod:`detect.backbones.trunks` lists each cut):
``alexnet``, ``vgg16``, ``googlenet``, ``resnet18``, ``resnet50``, ``squeezenet1_1``,
``densenet121``, ``resnext50_32x4d``, ``wide_resnet50_2`` (one map at stride 16) and
``mobilenet_v3_large`` (stride 32), plus ``<name>_fpn`` for the architectures with
four stages. ``resnet50_fpn`` and ``mobilenet_v3_large_fpn`` are built exactly as
torchvision's Faster R-CNN builders build them, so their state dicts load unchanged.

Weights (:mod:`detect.backbones.weights`): ``None`` (random init from ``seed``: the
same name, width and seed give the same weights in every rung), a local state-dict
file of the torchvision classifier (or of the tiny net), or ``"imagenet"``:
torchvision's ImageNet weights read from the torch hub cache. Nothing is ever
downloaded; when the file is missing the error names the file and where to put it.

Batch norm (``norm``): ``batch`` trains BN as usual (right from random init with
batches of 8 or more); ``frozen_batch`` fixes the statistics and affine terms
(torchvision's ``FrozenBatchNorm2d``), which is what torchvision's detection
builders use with pretrained weights, because detection batches of 1-4 large
images give poor BN statistics; use it with ``weights: imagenet``. ``group`` and
``none`` swap BN for GroupNorm or nothing.
"""

from __future__ import annotations

import difflib
from collections import OrderedDict
from functools import partial

import torch
from torch import nn
from torchvision.ops import misc as misc_nn_ops

from detect.backbones.trunks import CUTS, TinyBackbone
from detect.backbones.weights import IMAGENET_WEIGHTS, imagenet_weights_file, load_into, read_weights
from eval.errors import InputError

#: Every backbone name: tiny, then each architecture and its FPN variant where it has one.
BACKBONES = ("tiny", *(n for arch, cut in CUTS.items() for n in ((arch, arch + "_fpn") if cut.has_fpn else (arch,))))

__all__ = ["BACKBONES", "IMAGENET_WEIGHTS", "TinyBackbone", "backbone_from_config", "build_backbone",
           "feature_dict", "imagenet_weights_file"]


def _norm_layer(norm: str, bn_eps: float | None):
    if norm == "batch":
        return nn.BatchNorm2d if bn_eps is None else partial(nn.BatchNorm2d, eps=bn_eps)
    if norm == "frozen_batch":
        return misc_nn_ops.FrozenBatchNorm2d if bn_eps is None else partial(misc_nn_ops.FrozenBatchNorm2d, eps=bn_eps)
    if norm == "group":
        return lambda c: nn.GroupNorm(min(32, c), c)
    if norm == "none":
        return None
    raise ValueError(f"unknown norm {norm!r}")


def check_name(name: str, key: str = "model.backbone.name") -> None:
    """Raise ``InputError`` (with the closest known name) unless ``name`` is a backbone; ``key`` says where it came from."""
    if name in BACKBONES:
        return
    close = difflib.get_close_matches(name, BACKBONES, n=1, cutoff=0.5)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise InputError(None, f"{key}: unknown backbone {name!r}; {hint}known: {', '.join(BACKBONES)}")


def _build(name: str, width: int, norm_layer, bn_eps, trainable_layers: int) -> tuple[nn.Module, nn.Module]:
    """(backbone, the classifier whose state dict ``weights`` refer to)."""
    check_name(name)
    if name == "tiny":
        net = TinyBackbone(width, norm_layer)
        return net, net
    fpn = name.endswith("_fpn")
    arch = name[: -len("_fpn")] if fpn else name
    return CUTS[arch].build(fpn, norm_layer, bn_eps, trainable_layers)


def build_backbone(
    name="tiny",
    *,
    weights: str | None = None,
    width: int = 32,
    trainable_layers: int = 5,
    norm: str = "batch",
    bn_eps: float | None = None,
    seed: int = 0,
) -> nn.Module:
    """Build backbone ``name``; random init is drawn from ``seed`` without touching the global RNG.

    ``name`` may also be a ``BackboneConfig`` section (``build_backbone(config.model.backbone,
    seed=config.seed)``), whose fields then replace the keyword arguments.
    """
    if not isinstance(name, str):
        return backbone_from_config(name, seed)
    norm_layer = _norm_layer(norm, bn_eps)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net, classifier = _build(name, width, norm_layer, bn_eps, trainable_layers)
    if weights:
        state, path = read_weights(name, weights)
        load_into(classifier, state, name, path)
    return net


def backbone_from_config(cfg, seed: int) -> nn.Module:
    """``build_backbone`` from a ``BackboneConfig`` section (the one place that reads it)."""
    return build_backbone(
        cfg.name, weights=cfg.weights, width=cfg.width, trainable_layers=cfg.trainable_layers,
        norm=cfg.norm, bn_eps=getattr(cfg, "bn_eps", None), seed=seed,
    )


def feature_dict(features) -> "OrderedDict[str, torch.Tensor]":
    """A backbone's output as torchvision's ordered dict of named maps."""
    return features if isinstance(features, dict) else OrderedDict([("0", features)])
