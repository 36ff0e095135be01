"""Faster R-CNN: the shared backbone, an RPN as the proposal source, and RoIHeads.

``build_faster_rcnn(config, num_classes)`` wires the parts with keyword
arguments from the config (the parts themselves never see a config). With
``model.backbone.name: resnet50_fpn``, ``norm: frozen_batch``, ``bn_eps: 0.0``,
``trainable_layers: 3`` and torchvision's defaults (configs/coco/faster_rcnn_r50_fpn.yaml)
the module tree and state-dict keys are exactly those of torchvision's
``fasterrcnn_resnet50_fpn(weights=COCO_V1)``, so its checkpoint loads unchanged
and gives the same detections.
"""

from __future__ import annotations

from detect.backbones import backbone_from_config
from detect.detectors.base import Detector, build_transform
from detect.detectors.roi_heads import RegionHeads, build_region_heads
from proposals.rpn import build_rpn


def rpn_from_config(config, in_channels: int, num_feature_maps: int):
    """The RPN proposal source for ``config.model.rpn``."""
    rpn = config.model.rpn
    return build_rpn(
        in_channels,
        anchor_sizes=rpn.anchors.sizes,
        aspect_ratios=rpn.anchors.aspect_ratios,
        num_feature_maps=num_feature_maps,
        pre_nms_top_n_train=rpn.pre_nms_top_n_train,
        post_nms_top_n_train=rpn.post_nms_top_n_train,
        pre_nms_top_n_test=rpn.pre_nms_top_n_test,
        post_nms_top_n_test=rpn.post_nms_top_n_test,
        nms_thresh=rpn.nms_thresh,
        fg_iou_thresh=rpn.fg_iou_thresh,
        bg_iou_thresh=rpn.bg_iou_thresh,
        batch_size_per_image=rpn.batch_size_per_image,
        positive_fraction=rpn.positive_fraction,
        score_thresh=rpn.score_thresh,
    )


def region_heads_from_config(config, in_channels: int, featmap_names: list[str], num_classes: int) -> RegionHeads:
    """The RoIHeads shared by Fast and Faster R-CNN, from ``config.model.roi_head`` and ``config.test``."""
    head, test = config.model.roi_head, config.test
    return build_region_heads(
        in_channels,
        num_classes,
        featmap_names=featmap_names,
        roi_op=head.roi_op,
        output_size=head.output_size,
        sampling_ratio=head.sampling_ratio,
        representation_size=head.representation_size,
        fg_iou_thresh=head.fg_iou_thresh,
        bg_iou_thresh_hi=head.bg_iou_thresh_hi,
        bg_iou_thresh_lo=head.bg_iou_thresh_lo,
        batch_size_per_image=head.batch_size_per_image,
        positive_fraction=head.positive_fraction,
        bbox_reg_weights=head.bbox_reg_weights,
        score_thresh=test.score_thresh,
        nms_thresh=test.nms_thresh,
        detections_per_image=test.detections_per_image,
    )


def transform_from_config(config):
    """Resize so the short side is ``data.image_size`` (long side <= ``data.max_size``), ImageNet normalisation."""
    return build_transform(config.data.image_size, config.data.max_size)


def build_faster_rcnn(config, num_classes: int) -> Detector:
    """Faster R-CNN for ``num_classes`` object classes (labels 1..num_classes; 0 is background)."""
    backbone = backbone_from_config(config.model.backbone, seed=config.seed)
    n_maps = getattr(backbone, "num_feature_maps", 1)
    return Detector(
        transform_from_config(config),
        backbone,
        rpn_from_config(config, backbone.out_channels, n_maps),
        region_heads_from_config(config, backbone.out_channels, backbone.featmap_names, num_classes),
        rung="faster_rcnn",
    )
