"""From ``config.model``'s named parts to a ``Detector``: two plain dicts of part builders.

    model.proposals   -> PROPOSAL_PARTS[name].build(config, backbone)              -> proposal source
    model.region_head -> REGION_HEADS[name].build(config, backbone, num_classes)   -> region head

A reader jumps from a part's name in a config to its builder here, and from the
builder to the part's class. Builders are the only code that reads a config:
they pass the part's own section (``model.rpn``, ``model.precomputed``,
``model.windows``, ``model.roi_head``, ``model.crop``, ``model.global_pool``)
as keyword arguments. The shared backbone is built when either part reads its
features; the crop head owns a backbone of its own (same name, width and seed).

The ladder's rung names are labels read off the parts (:data:`LADDER`), used
in reports and model.pt; nothing is built from them. Any other pair of parts is
a detector too (configs/combinations/). See docs/architecture.md.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from detect.backbones import backbone_from_config
from detect.detectors.base import Detector, build_transform

#: The classic ladder: (proposals, region head) -> the rung's name, in ladder order.
LADDER: dict[tuple[str, str], str] = {
    ("whole_image", "global_pool"): "regression",
    ("windows", "crop"): "sliding_window",
    ("precomputed", "crop"): "rcnn",
    ("precomputed", "roi"): "fast_rcnn",
    ("rpn", "roi"): "faster_rcnn",
}


@dataclass(frozen=True)
class Part:
    """A part's builder and whether the part reads the detector's shared backbone features."""

    build: Callable[..., nn.Module]
    reads_features: bool


# --------------------------------------------------------------------------- proposal sources


def rpn_part(config, backbone) -> nn.Module:
    """Faster R-CNN's RPN on the shared features (``model.rpn``)."""
    from proposals.rpn import build_rpn

    rpn = config.model.rpn
    return build_rpn(
        backbone.out_channels, anchor_sizes=rpn.anchors.sizes, aspect_ratios=rpn.anchors.aspect_ratios,
        num_feature_maps=getattr(backbone, "num_feature_maps", 1),
        pre_nms_top_n_train=rpn.pre_nms_top_n_train, post_nms_top_n_train=rpn.post_nms_top_n_train,
        pre_nms_top_n_test=rpn.pre_nms_top_n_test, post_nms_top_n_test=rpn.post_nms_top_n_test,
        nms_thresh=rpn.nms_thresh, fg_iou_thresh=rpn.fg_iou_thresh, bg_iou_thresh=rpn.bg_iou_thresh,
        batch_size_per_image=rpn.batch_size_per_image, positive_fraction=rpn.positive_fraction,
        score_thresh=rpn.score_thresh,
    )


def precomputed_part(config, backbone) -> nn.Module:
    """Boxes computed outside the network (``model.precomputed``; detect/proposal_route.py supplies them)."""
    from detect.detectors.precomputed import PrecomputedSource

    pre = config.model.precomputed
    return PrecomputedSource(pre.top_n_train, pre.top_n_test)


def windows_part(config, backbone) -> nn.Module:
    """Dense sliding windows made from the image size (``model.windows``)."""
    from detect.detectors.sliding_window import SlidingWindowSource

    win = config.model.windows
    return SlidingWindowSource(win.scales, win.ratios, win.stride)


def whole_image_part(config, backbone) -> nn.Module:
    """One region per image: the image itself."""
    from detect.detectors.regression import WholeImageSource

    return WholeImageSource()


PROPOSAL_PARTS: dict[str, Part] = {
    "rpn": Part(rpn_part, reads_features=True),
    "precomputed": Part(precomputed_part, reads_features=False),
    "windows": Part(windows_part, reads_features=False),
    "whole_image": Part(whole_image_part, reads_features=False),
}


# --------------------------------------------------------------------------- region heads


def roi_head_part(config, backbone, num_classes: int) -> nn.Module:
    """RoI pooling on the shared features -> two-layer MLP -> classes + boxes (``model.roi_head``)."""
    from detect.detectors.roi_heads import build_region_heads

    head, test = config.model.roi_head, config.test
    return build_region_heads(
        backbone.out_channels, num_classes, featmap_names=backbone.featmap_names, roi_op=head.roi_op,
        output_size=head.output_size, sampling_ratio=head.sampling_ratio,
        representation_size=head.representation_size, fg_iou_thresh=head.fg_iou_thresh,
        bg_iou_thresh_hi=head.bg_iou_thresh_hi, bg_iou_thresh_lo=head.bg_iou_thresh_lo,
        batch_size_per_image=head.batch_size_per_image, positive_fraction=head.positive_fraction,
        bbox_reg_weights=head.bbox_reg_weights, score_thresh=test.score_thresh, nms_thresh=test.nms_thresh,
        detections_per_image=test.detections_per_image,
    )


def crop_head_part(config, backbone, num_classes: int) -> nn.Module:
    """Crop-and-warp every region through a backbone of its own (``model.crop``), optional SVM stage."""
    from detect.detectors.crop_head import CropHead
    from detect.detectors.rcnn import RCNNSampler
    from detect.detectors.svm import SVMStage

    crop, head, test = config.model.crop, config.model.roi_head, config.test
    own = backbone_from_config(config.model.backbone, seed=config.seed)
    sampler = RCNNSampler(batch_size=crop.batch_size, positive_fraction=crop.positive_fraction,
                          fg_iou_thresh=crop.fg_iou_thresh, bg_iou_hi=crop.bg_iou_thresh_hi,
                          bg_iou_lo=crop.bg_iou_thresh_lo)
    svm = SVMStage(head.representation_size, num_classes, enabled=crop.head == "svm", neg_iou=crop.svm_neg_iou,
                   rounds=crop.svm_rounds, c_reg=crop.svm_c, images=crop.svm_images, seed=config.seed)
    return CropHead(
        own, num_classes, crop_size=crop.size, context_pad=crop.context_pad, pool_size=crop.pool_size,
        representation_size=head.representation_size, sampler=sampler, bbox_reg_weights=head.bbox_reg_weights,
        chunk_size=crop.chunk_size, score_thresh=test.score_thresh, nms_thresh=test.nms_thresh,
        detections_per_img=test.detections_per_image, svm=svm,
    )


def global_pool_part(config, backbone, num_classes: int) -> nn.Module:
    """The whole image's map, pooled to a small grid -> class scores + one box (``model.global_pool``)."""
    from detect.detectors.regression import GlobalPoolHead

    pool = config.model.global_pool
    return GlobalPoolHead(backbone.out_channels, num_classes, representation_size=pool.representation_size,
                          pool_size=pool.pool_size, conv_channels=pool.conv_channels, box_loss=pool.box_loss,
                          bins=pool.bins, box_loss_weight=pool.box_loss_weight, class_pool=pool.class_pool,
                          class_agnostic=pool.class_agnostic, target=pool.target, topk=pool.topk,
                          score_thresh=config.test.score_thresh)


REGION_HEADS: dict[str, Part] = {
    "roi": Part(roi_head_part, reads_features=True),
    "crop": Part(crop_head_part, reads_features=False),
    "global_pool": Part(global_pool_part, reads_features=True),
}


# --------------------------------------------------------------------------- the composer


def rung_label(model_config) -> str:
    """The ladder rung a model config's parts make (``rcnn``, ...), else ``"<proposals>+<region_head>"``."""
    parts = (model_config.proposals, model_config.region_head)
    return LADDER.get(parts, "+".join(parts))


def transform_from_config(config):
    """Resize so the short side is ``data.image_size`` (long side <= ``data.max_size``), ImageNet normalisation."""
    return build_transform(config.data.image_size, config.data.max_size)


def build_detector(config, num_classes: int, *, init: bool = True) -> Detector:
    """The detector ``config.model`` names, for ``num_classes`` object classes (labels 1..C; 0 is background).

    Deterministic: the same config (same ``seed``) gives the same initial weights. Built in the
    order backbone, proposal source, region head (the heads draw from the seeded global RNG).

    ``init=False`` is for a caller that loads a whole state dict next (``load_state_dict``, strict):
    no random initial values are drawn and no backbone weights file is read
    (:mod:`detect.backbones.skip_init`), which saves ~0.5 s of one core for ResNet-50-FPN.
    """
    if not init:
        from detect.backbones.skip_init import skipped_init

        with skipped_init():
            return build_detector(_without_backbone_file(config), num_classes)
    source_part = PROPOSAL_PARTS[config.model.proposals]
    head_part = REGION_HEADS[config.model.region_head]
    with torch.random.fork_rng(devices=[]):  # seed the heads' RNG, leave the caller's stream alone
        torch.manual_seed(config.seed)
        backbone = None
        if source_part.reads_features or head_part.reads_features:
            backbone = backbone_from_config(config.model.backbone, seed=config.seed)
        source = source_part.build(config, backbone)
        head = head_part.build(config, backbone, num_classes)
        return Detector(transform_from_config(config), backbone, source, head, rung=rung_label(config.model))


def _without_backbone_file(config):
    """``config`` with ``model.backbone.weights: null``: the state dict loaded next holds the backbone."""
    backbone = config.model.backbone
    if not getattr(backbone, "weights", None):
        return config
    model = dataclasses.replace(config.model, backbone=dataclasses.replace(backbone, weights=None))
    return dataclasses.replace(config, model=model)
