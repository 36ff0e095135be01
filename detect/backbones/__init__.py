"""Backbones: the one feature extractor every rung of a comparison shares.

``build_backbone(name, ...) -> nn.Module`` with ``.out_channels`` (int),
``.featmap_names`` (the feature maps a RoI pooler reads) and, for FPNs,
``.num_feature_maps`` (all maps, the RPN's anchors need one size list each). ``forward(x)`` takes
(B, 3, H, W) float normalised images and returns a (B, C, H/s, W/s) tensor
(single-map backbones, stride ``s``) or an ordered dict of FPN levels.

Names: ``tiny`` (6 conv-BN-ReLU blocks, widths w-w-2w-2w-4w-4w, stride 8: trains
in minutes on a CPU at 128 px), ``vgg16`` (conv5_3, stride 16, the papers'
net), ``resnet18`` / ``resnet50`` (C4: up to layer3, stride 16),
``resnet50_fpn`` and ``mobilenet_v3_large_fpn`` (built exactly as torchvision's
Faster R-CNN builders build them, so their state dicts load unchanged) and
``mobilenet_v3_large`` (last stage + 1x1 conv to 256, stride 32).

Weights: ``None`` (random init from ``seed``: the same name, width and seed give
the same weights in every rung), a local state-dict file of the torchvision
classifier (or of the tiny net), or ``"imagenet"``: torchvision's ImageNet
weights read from the torch hub cache. Nothing is ever downloaded; when the file
is missing the error names the file and where to put it.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from functools import partial
from pathlib import Path

import torch
from torch import nn
from torchvision import models
from torchvision.models.detection.backbone_utils import _mobilenet_extractor, _resnet_fpn_extractor
from torchvision.ops import misc as misc_nn_ops

from eval.errors import InputError

#: torchvision's ImageNet weights for each backbone (the ones its detection builders use).
IMAGENET_WEIGHTS = {
    "vgg16": "VGG16_Weights.IMAGENET1K_V1",
    "resnet18": "ResNet18_Weights.IMAGENET1K_V1",
    "resnet50": "ResNet50_Weights.IMAGENET1K_V1",
    "resnet50_fpn": "ResNet50_Weights.IMAGENET1K_V1",
    "mobilenet_v3_large": "MobileNet_V3_Large_Weights.IMAGENET1K_V1",
    "mobilenet_v3_large_fpn": "MobileNet_V3_Large_Weights.IMAGENET1K_V1",
}
BACKBONES = ("tiny", *IMAGENET_WEIGHTS)


class TinyBackbone(nn.Sequential):
    """Six 3x3 conv-norm-ReLU blocks; blocks 1, 3, 5 halve the size: (B,3,H,W) -> (B,4w,H/8,W/8)."""

    def __init__(self, width: int = 32, norm_layer=nn.BatchNorm2d):
        widths = [width, width, 2 * width, 2 * width, 4 * width, 4 * width]
        layers, cin = [], 3
        for i, cout in enumerate(widths):
            stride = 2 if i % 2 == 0 else 1
            norm = norm_layer(cout) if norm_layer is not None else nn.Identity()
            layers.append(nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=norm_layer is None), norm, nn.ReLU(inplace=True)))
            cin = cout
        super().__init__(*layers)
        self.out_channels = cin
        self.featmap_names = ["0"]


class _Sequential(nn.Sequential):
    """A single-map backbone cut from a torchvision classifier."""

    def __init__(self, *layers: nn.Module, out_channels: int):
        super().__init__(*layers)
        self.out_channels = out_channels
        self.featmap_names = ["0"]


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


def _freeze_resnet(net: nn.Module, trainable_layers: int, stages: list[str]) -> None:
    """Freeze all but the last ``trainable_layers`` of ``stages`` (torchvision's rule)."""
    train = stages[::-1][:trainable_layers]
    if trainable_layers == len(stages):
        train.append("bn1")
    for name, param in net.named_parameters():
        if all(not name.startswith(layer) for layer in train):
            param.requires_grad_(False)


def _build(name: str, width: int, norm_layer, trainable_layers: int) -> tuple[nn.Module, nn.Module]:
    """(backbone, the torchvision classifier whose state dict ``weights`` refer to)."""
    if name == "tiny":
        net = TinyBackbone(width, norm_layer)
        return net, net
    if name == "vgg16":
        # Only the conv layers: the 120M-parameter classifier would cost seconds and 500 MB for nothing.
        cls = nn.Module()
        cls.features = models.vgg.make_layers(models.vgg.cfgs["D"], batch_norm=False)
        for m in cls.features.modules():  # torchvision's VGG initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
        features = cls.features[:-1]  # drop pool5: conv5_3 at stride 16, as in Fast/Faster R-CNN
        convs = [i for i, m in enumerate(features) if isinstance(m, nn.Conv2d)]
        block_starts = [0, 5, 10, 17, 24]  # conv1_1, conv2_1, conv3_1, conv4_1, conv5_1
        first_trainable = block_starts[5 - trainable_layers] if trainable_layers > 0 else len(features)
        for i in convs:
            if i < first_trainable:
                features[i].requires_grad_(False)
        return _Sequential(*features, out_channels=512), cls
    if name in ("resnet18", "resnet50"):
        cls = getattr(models, name)(norm_layer=norm_layer or nn.BatchNorm2d)
        _freeze_resnet(cls, min(trainable_layers, 4), ["conv1", "layer1", "layer2", "layer3"])
        stem = [cls.conv1, cls.bn1, cls.relu, cls.maxpool, cls.layer1, cls.layer2, cls.layer3]
        return _Sequential(*stem, out_channels=256 if name == "resnet18" else 1024), cls
    if name == "resnet50_fpn":
        cls = models.resnet50(norm_layer=norm_layer or nn.BatchNorm2d)
        net = _resnet_fpn_extractor(cls, trainable_layers)
        net.featmap_names = ["0", "1", "2", "3"]
        net.num_feature_maps = 5  # + the "pool" level the RPN also uses
        return net, cls
    if name in ("mobilenet_v3_large", "mobilenet_v3_large_fpn"):
        cls = models.mobilenet_v3_large(norm_layer=norm_layer or nn.BatchNorm2d)
        net = _mobilenet_extractor(cls, name.endswith("_fpn"), trainable_layers)
        net.featmap_names = ["0", "1"] if name.endswith("_fpn") else ["0"]
        net.num_feature_maps = 3 if name.endswith("_fpn") else 1
        return net, cls
    raise InputError(None, f"model.backbone.name: unknown backbone {name!r} (known: {', '.join(BACKBONES)})")


def imagenet_weights_file(name: str) -> Path:
    """Where torch hub caches torchvision's ImageNet weights for backbone ``name``."""
    enum = models.get_weight(IMAGENET_WEIGHTS[name])
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(enum.url)


def _read_weights(name: str, weights: str) -> dict:
    if weights == "imagenet":
        if name not in IMAGENET_WEIGHTS:
            raise InputError(None, f"model.backbone.weights: backbone {name!r} has no ImageNet weights; use null or a file")
        path = imagenet_weights_file(name)
        if not path.is_file():
            url = models.get_weight(IMAGENET_WEIGHTS[name]).url
            raise InputError(path, f"ImageNet weights for {name} not found; downloads are off: put {path.name} ({url}) at this path")
    else:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise InputError(path, "backbone weights file not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable/unsafe file is bad input
        raise InputError(path, f"cannot load backbone weights ({exc.__class__.__name__}); only plain state dicts are accepted") from None
    if not isinstance(state, dict):
        raise InputError(path, "backbone weights must be a state dict")
    return state


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
        net, classifier = _build(name, width, norm_layer, trainable_layers)
    if weights:
        state = _read_weights(name, weights)
        try:
            missing, unexpected = classifier.load_state_dict(state, strict=False)
        except RuntimeError:  # shape mismatches
            missing, unexpected = ["(shapes differ)"], []
        unexpected = [k for k in unexpected if not k.startswith(("classifier.", "fc."))]  # unused classifier heads
        if unexpected or [k for k in missing if "num_batches_tracked" not in k]:
            raise InputError(weights, f"not a {name} state dict of this width ({len(missing)} keys missing or mismatched, {len(unexpected)} unexpected)")
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
