"""Backbone weights: torchvision's ImageNet files from the torch hub cache, or a local state dict.

Nothing is ever downloaded. A missing file, a file that is not a plain state dict,
or a state dict of another architecture is bad input: one line naming the file
and, for a mismatch, the first key that differs.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch
from torch import nn
from torchvision import models

from eval.errors import InputError

#: torchvision's ImageNet weights for each architecture (the ones its detection builders use: V1).
IMAGENET_WEIGHTS = {
    "alexnet": "AlexNet_Weights.IMAGENET1K_V1",
    "vgg16": "VGG16_Weights.IMAGENET1K_V1",
    "googlenet": "GoogLeNet_Weights.IMAGENET1K_V1",
    "resnet18": "ResNet18_Weights.IMAGENET1K_V1",
    "resnet50": "ResNet50_Weights.IMAGENET1K_V1",
    "squeezenet1_1": "SqueezeNet1_1_Weights.IMAGENET1K_V1",
    "densenet121": "DenseNet121_Weights.IMAGENET1K_V1",
    "resnext50_32x4d": "ResNeXt50_32X4D_Weights.IMAGENET1K_V1",
    "wide_resnet50_2": "Wide_ResNet50_2_Weights.IMAGENET1K_V1",
    "mobilenet_v3_large": "MobileNet_V3_Large_Weights.IMAGENET1K_V1",
}

# Classifier heads a backbone never uses: their keys may be in the file or not.
_HEAD_PREFIXES = ("fc.", "classifier.", "aux1.", "aux2.")

# DenseNet files from before torchvision renamed "norm.1" to "norm1" (the published ImageNet file is one).
_DENSENET_OLD_KEY = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$")


def architecture(name: str) -> str:
    """The torchvision classifier a backbone name is cut from (``resnet50_fpn`` -> ``resnet50``)."""
    return name[: -len("_fpn")] if name.endswith("_fpn") else name


def hub_checkpoints_dir() -> Path:
    """The folder where torch hub keeps downloaded weights (``$TORCH_HOME/hub/checkpoints``)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def imagenet_weights_file(name: str) -> Path:
    """Where torch hub caches torchvision's ImageNet weights for backbone ``name``."""
    enum = models.get_weight(IMAGENET_WEIGHTS[architecture(name)])
    return hub_checkpoints_dir() / os.path.basename(enum.url)


def torchvision_weights_hint(path: str | os.PathLike) -> str:
    """For a missing file named like one of torchvision's published weights: where to get it ('' otherwise)."""
    file_name = Path(path).name
    for model_name in models.list_models():
        for weights in models.get_model_weights(model_name):
            if os.path.basename(weights.url) == file_name:
                cached = hub_checkpoints_dir() / file_name
                where = f"a copy is in the torch hub cache: {cached}" if cached.is_file() else \
                    f"torch hub keeps it in {cached.parent}"
                return (f"; torchvision publishes it as {type(weights).__name__}.{weights.name} at {weights.url} "
                        f"({where})")
    return ""


def read_weights(name: str, weights: str) -> tuple[dict, Path]:
    """The state dict ``weights`` names ("imagenet" or a path) and the file it came from."""
    if weights == "imagenet":
        if architecture(name) not in IMAGENET_WEIGHTS:
            raise InputError(None, f"model.backbone.weights: backbone {name!r} has no ImageNet weights; use null or a file")
        path = imagenet_weights_file(name)
        if not path.is_file():
            url = models.get_weight(IMAGENET_WEIGHTS[architecture(name)]).url
            raise InputError(path, f"ImageNet weights for {name} not found; downloads are off: put {path.name} "
                                   f"({url}) in {path.parent}")
    else:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise InputError(path, "backbone weights file not found" + torchvision_weights_hint(path))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable/unsafe file is bad input
        raise InputError(path, f"cannot load backbone weights ({exc.__class__.__name__}); only plain state dicts are accepted") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InputError(path, "backbone weights must be a state dict (names -> tensors)")
    return state, path


def _comparable(key: str) -> bool:
    return not key.startswith(_HEAD_PREFIXES) and not key.endswith("num_batches_tracked")


def first_mismatch(own: dict, state: dict) -> str | None:
    """The first key (in the network's order, then the file's) whose presence or shape differs, in words."""
    for key, value in own.items():
        if not _comparable(key):
            continue
        if key not in state:
            return f"first mismatched key {key!r}: missing from the file"
        if tuple(state[key].shape) != tuple(value.shape):
            return (f"first mismatched key {key!r}: shape {tuple(state[key].shape)} in the file, "
                    f"{tuple(value.shape)} expected")
    for key in state:
        if _comparable(key) and key not in own:
            return f"first mismatched key {key!r}: not in this network"
    return None


def load_into(classifier: nn.Module, state: dict, name: str, path: Path) -> None:
    """Copy ``state`` into ``classifier`` (heads ignored); another architecture raises ``InputError``."""
    if architecture(name) == "densenet121":
        state = {_DENSENET_OLD_KEY.sub(r"\1\2", k): v for k, v in state.items()}
    own = classifier.state_dict()
    problem = first_mismatch(own, state)
    if problem is not None:
        raise InputError(path, f"not weights for backbone {name!r} with this width and norm ({problem})")
    classifier.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False)
