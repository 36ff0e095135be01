"""Backbones cut from torchvision's ImageNet classifiers, one builder per architecture.

Every builder returns ``(backbone, classifier)``: the classifier is torchvision's
network of that name (random init), whose state dict ``weights`` refer to; the
backbone shares its modules, so loading the classifier loads the backbone.

Single-map cuts (one feature map, for RoI pooling on one level):

    alexnet        conv5 + ReLU (pool5 dropped)          stride 16, 256 ch
    vgg16          conv5_3 + ReLU (pool5 dropped)        stride 16, 512 ch
    googlenet      up to inception4e                     stride 16, 832 ch
    resnet*/resnext50_32x4d/wide_resnet50_2  C4: up to layer3   stride 16, 256 or 1024 ch
    squeezenet1_1  all of ``features`` (its last stage)  stride 16, 512 ch
    densenet121    up to denseblock3 + BN-ReLU           stride 16, 1024 ch
    mobilenet_v3_large  all features + 1x1 conv to 256   stride 32 (torchvision's builder)

``<name>_fpn`` (architectures with four stages): a 256-channel FPN on the four
stage outputs at strides 4-32 plus a max-pooled level at 64 (mobilenet_v3_large_fpn:
torchvision's two-level FPN). ResNets and MobileNet use torchvision's own
extractors, so their state dicts equal its detection models'.

``trainable_layers`` counts stages from the top, as torchvision's detection
builders do; the parameters of the stages below are frozen (``requires_grad=False``).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn
from torchvision import models
from torchvision.models.detection.backbone_utils import BackboneWithFPN, _mobilenet_extractor, _resnet_fpn_extractor
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool


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


class SingleMap(nn.Sequential):
    """A single-map backbone cut from a torchvision classifier: (B,3,H,W) -> (B,C,H/s,W/s)."""

    def __init__(self, *layers: nn.Module, out_channels: int):
        super().__init__(*layers)
        self.out_channels = out_channels
        self.featmap_names = ["0"]


class GoogLeNetInput(nn.Module):
    """ImageNet-normalised input -> the (x - 0.5) / 0.5 input torchvision's ported GoogLeNet weights expect.

    The same arithmetic as ``GoogLeNet._transform_input`` (``transform_input=True``, set when its ImageNet
    weights load), as a module so that a cut of the network keeps it.
    """

    def forward(self, x):
        mean, std = x.new_tensor([0.485, 0.456, 0.406]), x.new_tensor([0.229, 0.224, 0.225])
        return (x * (std / 0.5)[:, None, None] + ((mean - 0.5) / 0.5)[:, None, None])


def freeze_stages(classifier: nn.Module, stages: list[tuple[str, ...]], trainable: int) -> None:
    """Freeze every classifier parameter outside the last ``trainable`` of ``stages`` (name prefixes)."""
    keep = tuple(p + "." for stage in stages[len(stages) - trainable:] for p in stage) if trainable > 0 else ()
    for name, param in classifier.named_parameters():
        if not name.startswith(keep):
            param.requires_grad_(False)


def _fpn(body: nn.Module, return_layers: list[str], in_channels: list[int]) -> nn.Module:
    """A 256-channel FPN on ``body``'s children ``return_layers`` + a max-pooled top level."""
    net = BackboneWithFPN(body, {name: str(i) for i, name in enumerate(return_layers)}, in_channels, 256,
                          extra_blocks=LastLevelMaxPool())
    net.featmap_names = [str(i) for i in range(len(return_layers))]
    net.num_feature_maps = len(return_layers) + 1  # + the "pool" level the RPN also uses
    return net


@dataclass(frozen=True)
class Cut:
    """How backbone ``name`` is cut from its classifier."""

    build: Callable[..., tuple[nn.Module, nn.Module]]  # (fpn, norm_layer, bn_eps, trainable_layers) -> (net, classifier)
    stride: int  # output stride of the single map (FPN: the finest level is 4)
    has_fpn: bool = True


def _alexnet(fpn, norm_layer, bn_eps, trainable):
    cls = models.alexnet()
    features = cls.features[:-1]  # drop pool5: conv5 at stride 16
    stages = [(f"features.{i}",) for i in (0, 3, 6, 8, 10)]  # the five convs
    freeze_stages(cls, stages, min(trainable, len(stages)))
    return SingleMap(*features, out_channels=256), cls


_VGG_STAGES = [("features.0", "features.2"), ("features.5", "features.7"), ("features.10", "features.12", "features.14"),
               ("features.17", "features.19", "features.21"), ("features.24", "features.26", "features.28")]


def _vgg16(fpn, norm_layer, bn_eps, trainable):
    # Only the conv layers: the 120M-parameter classifier would cost seconds and 500 MB for nothing.
    cls = nn.Module()
    cls.features = models.vgg.make_layers(models.vgg.cfgs["D"], batch_norm=False)
    for m in cls.features.modules():  # torchvision's VGG initialisation
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(m.bias)
    freeze_stages(cls, _VGG_STAGES, min(trainable, 5))
    if fpn:  # conv3_3, conv4_3, conv5_3 (strides 4, 8, 16) and pool5 (32)
        return _fpn(cls.features, ["15", "22", "29", "30"], [256, 512, 512, 512]), cls
    return SingleMap(*cls.features[:-1], out_channels=512), cls  # conv5_3 at stride 16, as in Fast/Faster R-CNN


_GOOGLENET_STEM = ["conv1", "maxpool1", "conv2", "conv3", "maxpool2", "inception3a", "inception3b", "maxpool3",
                   "inception4a", "inception4b", "inception4c", "inception4d", "inception4e"]
_GOOGLENET_STAGES = [("conv1", "conv2", "conv3"), ("inception3a", "inception3b"),
                     ("inception4a", "inception4b", "inception4c", "inception4d", "inception4e"),
                     ("inception5a", "inception5b")]


def _googlenet(fpn, norm_layer, bn_eps, trainable):
    cls = models.googlenet(aux_logits=False, init_weights=True, transform_input=False)
    swap_norms(cls, norm_layer, bn_eps)
    names = _GOOGLENET_STEM + (["maxpool4", "inception5a", "inception5b"] if fpn else [])
    body = nn.Sequential(OrderedDict([("input", GoogLeNetInput())] + [(n, getattr(cls, n)) for n in names]))
    stages = _GOOGLENET_STAGES if fpn else _GOOGLENET_STAGES[:3]
    freeze_stages(cls, stages, min(trainable, len(stages)))
    if fpn:
        return _fpn(body, ["conv3", "inception3b", "inception4e", "inception5b"], [192, 480, 832, 1024]), cls
    return SingleMap(*body, out_channels=832), cls


def _resnet(arch):
    def build(fpn, norm_layer, bn_eps, trainable):
        cls = getattr(models, arch)(norm_layer=norm_layer or nn.BatchNorm2d)
        if fpn:  # torchvision's extractor: freezes, FPN on layer1-4, LastLevelMaxPool
            net = _resnet_fpn_extractor(cls, min(trainable, 5))
            net.featmap_names = ["0", "1", "2", "3"]
            net.num_feature_maps = 5
            return net, cls
        freeze_stages(cls, [("conv1", "bn1"), ("layer1",), ("layer2",), ("layer3",)], min(trainable, 4))
        stem = [cls.conv1, cls.bn1, cls.relu, cls.maxpool, cls.layer1, cls.layer2, cls.layer3]
        return SingleMap(*stem, out_channels=_layer3_channels(cls)), cls
    return build


def _layer3_channels(cls) -> int:
    """Channels of layer3's output: 256 (BasicBlock) or 1024 (Bottleneck, any width or groups)."""
    block = cls.layer3[-1]
    last = block.conv3 if hasattr(block, "conv3") else block.conv2
    return last.out_channels


def _squeezenet1_1(fpn, norm_layer, bn_eps, trainable):
    cls = models.squeezenet1_1()
    stages = [("features.0",), ("features.3", "features.4"), ("features.6", "features.7"),
              ("features.9", "features.10", "features.11", "features.12")]
    freeze_stages(cls, stages, min(trainable, len(stages)))
    return SingleMap(*cls.features, out_channels=512), cls


_DENSENET_STAGES = [("features.conv0", "features.norm0"), ("features.denseblock1", "features.transition1"),
                    ("features.denseblock2", "features.transition2"), ("features.denseblock3", "features.transition3"),
                    ("features.denseblock4", "features.norm5")]


def _densenet121(fpn, norm_layer, bn_eps, trainable):
    cls = models.densenet121()
    swap_norms(cls, norm_layer, bn_eps)
    if fpn:
        freeze_stages(cls, _DENSENET_STAGES, min(trainable, 5))
        return _fpn(cls.features, ["denseblock1", "denseblock2", "denseblock3", "norm5"], [256, 512, 1024, 1024]), cls
    freeze_stages(cls, _DENSENET_STAGES[:4], min(trainable, 4))
    f = cls.features
    # Dense layers are pre-activation: transition3's BN + ReLU finish denseblock3's output (its conv/pool are not used).
    layers = [f.conv0, f.norm0, f.relu0, f.pool0, f.denseblock1, f.transition1, f.denseblock2, f.transition2,
              f.denseblock3, f.transition3.norm, f.transition3.relu]
    return SingleMap(*layers, out_channels=1024), cls


def _mobilenet_v3_large(fpn, norm_layer, bn_eps, trainable):
    cls = models.mobilenet_v3_large(norm_layer=norm_layer or nn.BatchNorm2d)
    net = _mobilenet_extractor(cls, fpn, trainable)
    net.featmap_names = ["0", "1"] if fpn else ["0"]
    net.num_feature_maps = 3 if fpn else 1
    return net, cls


CUTS: dict[str, Cut] = {
    "alexnet": Cut(_alexnet, 16, has_fpn=False),
    "vgg16": Cut(_vgg16, 16),
    "googlenet": Cut(_googlenet, 16),
    "resnet18": Cut(_resnet("resnet18"), 16),
    "resnet50": Cut(_resnet("resnet50"), 16),
    "squeezenet1_1": Cut(_squeezenet1_1, 16, has_fpn=False),
    "densenet121": Cut(_densenet121, 16),
    "resnext50_32x4d": Cut(_resnet("resnext50_32x4d"), 16),
    "wide_resnet50_2": Cut(_resnet("wide_resnet50_2"), 16),
    "mobilenet_v3_large": Cut(_mobilenet_v3_large, 32),
}


def swap_norms(module: nn.Module, norm_layer, bn_eps: float | None) -> None:
    """Replace every ``BatchNorm2d`` in ``module`` by ``norm_layer(C)`` (None: identity), keeping its eps.

    For classifiers whose constructor takes no ``norm_layer`` (GoogLeNet, DenseNet). Done before the cut
    and before weights load, so the cut holds the new layers and the file loads into them.
    """
    if norm_layer is nn.BatchNorm2d and bn_eps is None:
        return
    for child_name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            new = nn.Identity() if norm_layer is None else norm_layer(child.num_features)
            if hasattr(new, "eps"):
                new.eps = child.eps if bn_eps is None else bn_eps
            setattr(module, child_name, new)
        else:
            swap_norms(child, norm_layer, bn_eps)


def torchvision_classifier(arch: str) -> nn.Module:
    """torchvision's full classifier ``arch`` (random init, no aux heads) as its ImageNet weights describe it."""
    kwargs = {"aux_logits": False, "init_weights": True} if arch == "googlenet" else {}
    with torch.random.fork_rng(devices=[]):
        return models.get_model(arch, **kwargs)
