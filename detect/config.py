"""Typed configuration: YAML files with ``_base_`` inheritance, ``--set`` overrides, dataclasses.

A config file may name ``_base_: path`` (relative to that file, or a list of
paths merged in order); mappings merge deeply, anything else replaces (reading and
merging live in detect/config_files.py, checking in detect/config_validate.py). After
the merge and the ``--set key=value`` overrides (values parsed as YAML), the
tree is validated into :class:`Config`. An unknown or mistyped key, or a number
outside the range its field declares (``bounded(...)``, detect/config_bounds.py),
raises ``InputError`` naming the file that set it and the key.

Configuration flows from here into builders as plain arguments; library parts
never read a config object themselves.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from detect.config_bounds import PROBABILITY, bounded
from detect.config_files import apply_overrides, load_tree  # noqa: F401 - part of this module's interface
from detect.config_validate import build_dataclass, check_bounds, convert_value
from eval.errors import InputError
from proposals.images import DEFAULT_MAX_PIXELS

# The parts a detector is composed of (detect/build.py maps each name to its builder).
ProposalPart = Literal["rpn", "precomputed", "windows", "whole_image"]
RegionHeadPart = Literal["roi", "crop", "global_pool"]


@dataclass
class DataConfig:
    """Where the images are and how they are fed to a model."""

    root: str = "runs/synth"
    train_split: str = "train"
    val_split: str = "test"
    test_split: str = "test"
    image_size: int = bounded(128, ge=1)  # images are resized so that the short side is this many pixels
    max_size: int = bounded(128, ge=1)  # ... and the long side at most this many
    flip: bool = True  # random horizontal flips in training
    workers: int = bounded(0, ge=0)  # DataLoader worker processes
    # Training checks every image before the first iteration and skips the bad ones: "header" reads only
    # format, size and EXIF orientation (cheap); "decode" decodes each one too (catches truncated files).
    check_images: Literal["none", "header", "decode"] = "header"
    max_image_pixels: int = bounded(DEFAULT_MAX_PIXELS, ge=1)  # larger images are refused unread (decompression bombs)


@dataclass
class BackboneConfig:
    """The shared feature extractor; every rung of a comparison uses the same one."""

    name: str = "tiny"
    weights: str | None = None  # null, a local state-dict path, or "imagenet"
    width: int = bounded(32, ge=1)  # base channel width (tiny only)
    # torchvision backbones: how many stages, counted from the top, are fine-tuned (MobileNetV3 has 6, the
    # others 5 or fewer; a larger count trains every stage)
    trainable_layers: int = bounded(5, ge=0, le=6)
    norm: Literal["batch", "frozen_batch", "group", "none"] = "batch"
    bn_eps: float | None = bounded(None, ge=0)  # norm-layer epsilon override (torchvision's COCO R50-FPN weights use 0.0)


@dataclass
class AnchorConfig:
    sizes: list[list[int]] = bounded(factory=lambda: [[16, 32, 64]], ge=1)  # one list per feature map
    aspect_ratios: list[float] = bounded(factory=lambda: [0.5, 1.0, 2.0], gt=0)


@dataclass
class RPNConfig:
    """Region proposal network (torchvision's RegionProposalNetwork)."""

    ORDERED: ClassVar = (("bg_iou_thresh", "fg_iou_thresh"),)  # anchors between the two are ignored

    anchors: AnchorConfig = field(default_factory=AnchorConfig)
    pre_nms_top_n_train: int = bounded(600, ge=1)
    post_nms_top_n_train: int = bounded(300, ge=1)
    pre_nms_top_n_test: int = bounded(300, ge=1)
    post_nms_top_n_test: int = bounded(150, ge=1)
    nms_thresh: float = bounded(0.7, **PROBABILITY)
    fg_iou_thresh: float = bounded(0.7, **PROBABILITY)
    bg_iou_thresh: float = bounded(0.3, **PROBABILITY)
    batch_size_per_image: int = bounded(256, ge=1)
    positive_fraction: float = bounded(0.5, **PROBABILITY)
    score_thresh: float = bounded(0.0, **PROBABILITY)


@dataclass
class RoIHeadConfig:
    """``model.region_head: roi``: RoI pooling on the shared features -> two-layer MLP (Fast/Faster R-CNN)."""

    ORDERED: ClassVar = (("bg_iou_thresh_lo", "bg_iou_thresh_hi"), ("bg_iou_thresh_hi", "fg_iou_thresh"))

    roi_op: Literal["roi_pool", "roi_align", "roi_align_matmul"] = "roi_align_matmul"
    output_size: int = bounded(7, ge=1)
    sampling_ratio: int = bounded(2, ge=1)  # sample points per bin side (the matmul op needs > 0)
    representation_size: int = bounded(128, ge=1)  # width of the two-layer MLP head
    fg_iou_thresh: float = bounded(0.5, **PROBABILITY)
    bg_iou_thresh_hi: float = bounded(0.5, **PROBABILITY)
    bg_iou_thresh_lo: float = bounded(0.0, **PROBABILITY)  # Fast R-CNN paper: 0.1
    batch_size_per_image: int = bounded(64, ge=1)
    positive_fraction: float = bounded(0.25, **PROBABILITY)
    bbox_reg_weights: list[float] = bounded(factory=lambda: [10.0, 10.0, 5.0, 5.0], gt=0)


def _window_default(name: str):
    """A default of ``proposals.sliding_window.sliding_windows``: the one place window defaults live."""
    import inspect

    from proposals.sliding_window import sliding_windows

    return inspect.signature(sliding_windows).parameters[name].default


@dataclass
class PrecomputedConfig:
    """``model.proposals: precomputed``: boxes computed outside the network, cached per image (detect/proposal_route.py)."""

    method: Literal["selective_search", "sliding_window"] = "selective_search"
    # The method's keyword arguments (e.g. mode, max_side, min_size, seed for Selective Search); names left out
    # take the method's own defaults (proposals/selective_search.py, proposals/sliding_window.py).
    params: dict[str, Any] = field(default_factory=dict)
    cache_dir: str | None = None  # default: <data.root>/proposals/<method>-<mode or "default">
    compute: bool = True  # compute a missing cache on demand; false = error
    top_n_train: int = bounded(2000, ge=1)
    top_n_test: int = bounded(2000, ge=1)


@dataclass
class WindowsConfig:
    """``model.proposals: windows``: dense sliding windows made inside the model from the image size."""

    scales: list[float] = bounded(factory=lambda: list(_window_default("scales")), gt=0)  # sqrt(window area), px
    ratios: list[float] = bounded(factory=lambda: list(_window_default("ratios")), gt=0)  # height / width
    stride: float = bounded(factory=lambda: float(_window_default("stride")), gt=0)


@dataclass
class GlobalPoolConfig:
    """``model.region_head: global_pool``: the whole image's map -> class scores + one box (detect/detectors/regression.py).

    The defaults are the head before issue 13 (global average pooling, smooth-L1, whole images), so that
    model.pt files written before it load unchanged; configs/ladder/regression.yaml sets the rung's head.
    """

    ORDERED: ClassVar = (("crop_fraction_min", "crop_fraction_max"),)

    class_agnostic: bool = False  # one box for every class, or one box per class
    target: Literal["largest", "first"] = "largest"  # the one object per image the box is trained on
    topk: int = bounded(1, ge=1)  # detections per image at test time: its top-k classes, all with the one box
    representation_size: int = bounded(128, ge=1)  # width of the two fully connected layers
    pool_size: int = bounded(1, ge=1)  # the map is pooled to p x p cells, flattened; 1 = global average pooling
    conv_channels: int = bounded(0, ge=0)  # a 3x3 stride-2 conv + ReLU of this many channels before pooling; 0 = none
    box_loss: Literal["l2", "smooth_l1", "bins"] = "smooth_l1"  # l2/smooth_l1 on deltas; bins: edges over bins
    bins: int = bounded(32, ge=2)  # bins per box edge across the image (box_loss: bins)
    box_loss_weight: float = bounded(1.0, ge=0)  # the box loss's weight against the class cross-entropy
    # Class scores from the box branch's layers (shared) or from the whole map pooled to one vector (avg, max)
    class_pool: Literal["shared", "avg", "max"] = "shared"
    # What each training sample shows (detect/data/object_crops.py; test images are always whole): image = the
    # training image; crop / window / erase = one of its objects, in a window it fills crop_fraction_min..max of
    # (sqrt of area ratio) that is cut out and resized (crop) or kept in place with the rest blanked (window),
    # or in the whole image with the other objects blanked (erase).
    train_view: Literal["image", "crop", "window", "erase"] = "image"
    crop_fraction_min: float = bounded(0.2, gt=0, le=1)
    crop_fraction_max: float = bounded(0.9, gt=0, le=1)


@dataclass
class CropHeadConfig:
    """``model.region_head: crop``: every region cropped, warped and run through its own backbone."""

    ORDERED: ClassVar = (("bg_iou_thresh_lo", "bg_iou_thresh_hi"), ("bg_iou_thresh_hi", "fg_iou_thresh"))

    size: int = bounded(227, ge=1)  # side of the warped crops (R-CNN: 227 for ~500 px images)
    context_pad: float = bounded(16.0, ge=0)  # context pixels per side at the warped scale (R-CNN: 16 of 227)
    pool_size: int = bounded(3, ge=1)  # the backbone's map on a crop is average-pooled to pool_size x pool_size
    chunk_size: int = bounded(256, ge=1)  # crops per backbone call at test time
    head: Literal["softmax", "svm"] = "softmax"  # svm: per-class linear SVMs after fine-tuning
    # R-CNN fine-tuning sampler: 32 positives (IoU >= 0.5) + 96 background per 128 regions per batch
    batch_size: int = bounded(128, ge=1)
    positive_fraction: float = bounded(0.25, **PROBABILITY)
    fg_iou_thresh: float = bounded(0.5, **PROBABILITY)
    bg_iou_thresh_hi: float = bounded(0.5, **PROBABILITY)
    bg_iou_thresh_lo: float = bounded(0.0, **PROBABILITY)
    # SVMs (head: svm): negatives below this IoU, hard-negative mining rounds, regularisation
    svm_neg_iou: float = bounded(0.3, **PROBABILITY)
    svm_rounds: int = bounded(3, ge=1)
    svm_c: float = bounded(0.001, gt=0)
    svm_images: int = bounded(100, ge=1)  # training images whose proposals feed the SVMs


@dataclass
class ModelConfig:
    """A detector as named parts: a proposal source and a region head on one backbone, each with its section.

    The ladder's rung names (regression ... faster_rcnn) are labels read off the parts
    (``detect.build.rung_label``), never configured.
    """

    proposals: ProposalPart = "rpn"
    region_head: RegionHeadPart = "roi"
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    rpn: RPNConfig = field(default_factory=RPNConfig)
    precomputed: PrecomputedConfig = field(default_factory=PrecomputedConfig)
    windows: WindowsConfig = field(default_factory=WindowsConfig)
    roi_head: RoIHeadConfig = field(default_factory=RoIHeadConfig)
    crop: CropHeadConfig = field(default_factory=CropHeadConfig)
    global_pool: GlobalPoolConfig = field(default_factory=GlobalPoolConfig)


@dataclass
class TrainConfig:
    iterations: int = bounded(1000, ge=1)
    batch_size: int = bounded(8, ge=1)
    lr: float = bounded(1e-3, gt=0)
    optimizer: Literal["sgd", "adamw"] = "adamw"
    momentum: float = bounded(0.9, ge=0, lt=1)
    weight_decay: float = bounded(1e-4, ge=0)
    warmup_iterations: int = bounded(50, ge=0)
    schedule: Literal["cosine", "step", "constant"] = "cosine"
    steps: list[int] = bounded(factory=list, ge=1)  # step schedule: iterations where lr drops by gamma
    gamma: float = bounded(0.1, gt=0)
    grad_clip: float | None = bounded(10.0, ge=0)  # null or 0: no clipping
    checkpoint_every: int = bounded(200, ge=1)
    val_every: int = bounded(0, ge=0)  # validate every N iterations; 0 = never (eval/compare score the final model)
    log_every: int = bounded(10, ge=1)
    amp: bool = True  # CUDA: float16 autocast + GradScaler (detect/engine/precision.py)
    cpu_amp: bool = False  # CPU: bfloat16 autocast where the CPU has native bf16 (AMX, AVX512-BF16); else float32
    channels_last: bool = True  # CPU: NHWC weights, faster oneDNN convolutions; float32 values equal to ~1e-6


@dataclass
class TestConfig:
    score_thresh: float = bounded(0.05, **PROBABILITY)  # detections must score above it
    nms_thresh: float = bounded(0.5, **PROBABILITY)
    detections_per_image: int = bounded(100, ge=1)
    protocol: Literal["voc07", "voc12", "coco"] = "voc12"
    batch_size: int = bounded(8, ge=1)


@dataclass
class CheckConfig:
    """Budgets of ``detladder check`` (detect/check/; docs/babysitting.md explains each verdict)."""

    batches: int = bounded(3, ge=1)  # real training batches (train.batch_size images each) for the initial loss and the sweep
    init_tolerance: float = bounded(0.25, gt=0)  # initial classification loss within this fraction of its expected value
    init_scale: float = bounded(1.0, gt=0)  # multiply the final classification layers' initial weights (try 30: the check fails)
    overfit_images: int = bounded(8, ge=1)  # images the overfit check trains on (no flips, no weight decay)
    overfit_iterations: int = bounded(200, ge=1)  # R-CNN reached mAP 0.8999 on 8 images in 150
    overfit_lr: float | None = bounded(None, gt=0)  # null: train.lr
    overfit_min_map: float = bounded(0.9, **PROBABILITY)  # mAP on those same images the model must reach
    overfit_loss_drop: float = bounded(5.0, ge=1)  # the final loss must be this many times below the initial one
    sweep_iterations: int = bounded(100, ge=1)  # learning-rate sweep: iterations from sweep_lr_min to sweep_lr_max
    sweep_lr_min: float = bounded(1e-6, gt=0)
    sweep_lr_max: float = bounded(1.0, gt=0)
    stop_factor: float = bounded(3.0, ge=1)  # the sweep (and a tune trial) stops when the loss passes this x its start, or NaN
    gradcheck: bool = True


@dataclass
class Config:
    """Everything a run needs. ``classes`` defaults to the dataset's own class list."""

    seed: int = bounded(0, ge=0)
    classes: list[str] | None = None
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    test: TestConfig = field(default_factory=TestConfig)
    check: CheckConfig = field(default_factory=CheckConfig)


def check_setting(key: str, value: Any, source: str) -> Any:
    """Check one value for the dotted config ``key`` as a file would be checked; returns it converted.

    For command-line options that stand for a config key (``detect --score-thresh`` is
    ``test.score_thresh``), so that they obey the same range; ``source`` names the option.
    """
    cls, parts = Config, key.split(".")
    for part in parts[:-1]:
        cls = typing.get_type_hints(cls)[part]
    f = {f.name: f for f in dataclasses.fields(cls)}[parts[-1]]
    origins = {key: source}
    converted = convert_value(value, typing.get_type_hints(cls)[parts[-1]], key, origins)
    check_bounds(f, converted, key, source)
    return converted


def config_from_tree(tree: dict, origins: dict | None = None) -> Config:
    """Validate a plain (already merged) tree into a :class:`Config` (earlier layouts upgraded first)."""
    from detect.config_layout import upgrade_rung_layout

    return build_dataclass(Config, upgrade_rung_layout(tree), "", origins or {})


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Load, merge, override and validate a config file (``None``: the defaults)."""
    origins: dict = {}
    tree = load_tree(path, origins) if path is not None else {}
    tree = apply_overrides(tree, list(overrides), origins)
    return config_from_tree(tree, origins)


def config_to_dict(config: Config) -> dict:
    """The config as plain data (for checkpoints, metrics.json and ``model.pt``)."""
    return dataclasses.asdict(config)


def _flatten(tree: Any, prefix: str = "") -> dict:
    if not isinstance(tree, dict):
        return {prefix.rstrip("."): tree}
    out: dict = {}
    for key, value in tree.items():
        out.update(_flatten(value, f"{prefix}{key}."))
    return out


def config_changes(stored: dict, config: Config, ignore: tuple[str, ...] = ()) -> list[str]:
    """``"key: old -> new"`` for each key where ``config`` differs from a stored config dict, in key order.

    The stored dict (a checkpoint's) is validated first so that an earlier layout
    compares equal to today's; keys in ``ignore`` are left out.
    """
    try:
        old = _flatten(config_to_dict(config_from_tree(stored)))
    except InputError:  # a stored config this version can no longer validate: compare it as written
        old = _flatten(stored)
    new = _flatten(config_to_dict(config))

    def show(tree: dict, key: str) -> str:
        return repr(tree[key]) if key in tree else "(absent)"

    return [f"{key}: {show(old, key)} -> {show(new, key)}" for key in sorted(set(old) | set(new))
            if key not in ignore and (key in old, old.get(key)) != (key in new, new.get(key))]
