"""The crop head: R-CNN's and the sliding-window rung's region classifier.

Every region is cut out of the (normalised) image and warped to a fixed square
(``detect.ops.crop_and_warp``), then the *whole backbone* runs on each crop:
no computation is shared between overlapping regions — the cost Fast R-CNN
removes. After the backbone the head is the same as Fast/Faster R-CNN's:
torchvision's ``TwoMLPHead`` + ``FastRCNNPredictor`` (softmax over background
+ C classes, class-specific box deltas), so the rungs differ only in how a
region's features are obtained.

    crops (R, 3, S, S) -> backbone -> (R, K, s, s) -> avg-pool (R, K, p, p)
        -> TwoMLPHead (R, M) -> cls_score (R, C+1), bbox_pred (R, (C+1)*4)

Region-head API (FRAMEWORK.md): ``forward(features, proposals, image_sizes,
targets, images) -> (detections, losses)``; ``features`` is ignored (the
detector skips its own backbone for crop rungs), ``images`` is the transform's
ImageList, proposals and targets are in its (resized) coordinates.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.detection._utils import BoxCoder
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead

from detect.detectors.rcnn import RCNNSampler, classification_and_box_loss, postprocess_detections
from detect.ops.crop_warp import crop_and_warp


def backbone_map(out) -> Tensor:
    """The last feature map of a backbone's output (a tensor or an ordered dict of maps)."""
    if isinstance(out, Tensor):
        return out
    return list(out.values())[-1]


class CropHead(nn.Module):
    """Crop-and-warp every region, run ``backbone`` on the crops, classify and regress.

    Args:
        backbone: module with ``.out_channels``; shared weights with nothing else.
        num_classes: C object classes (the predictor has C + 1 outputs, 0 = background).
        crop_size: side S of the warped crops (R-CNN: 227 for ~500 px images).
        context_pad: context pixels per side at the warped scale (R-CNN: 16 of 227).
        pool_size: the backbone map is average-pooled to pool_size x pool_size.
        sampler: draws the training regions (``RCNNSampler``).
        chunk_size: crops per backbone call at test time (bounds memory; PERF-NOTES: chunks beat one batch).
        score_thresh, nms_thresh, detections_per_img: test-time post-processing.
    """

    def __init__(self, backbone: nn.Module, num_classes: int, *, crop_size: int = 48,
                 context_pad: float = 0.0, pool_size: int = 3, representation_size: int = 128,
                 sampler: RCNNSampler | None = None, bbox_reg_weights=(10.0, 10.0, 5.0, 5.0),
                 chunk_size: int = 256, score_thresh: float = 0.05, nms_thresh: float = 0.5,
                 detections_per_img: int = 100):
        super().__init__()
        self.backbone = backbone
        self.box_head = TwoMLPHead(backbone.out_channels * pool_size * pool_size, representation_size)
        self.box_predictor = FastRCNNPredictor(representation_size, num_classes + 1)
        self.box_coder = BoxCoder(tuple(bbox_reg_weights))
        self.sampler = sampler or RCNNSampler(self.box_coder)
        self.crop_size = crop_size
        self.context_pad = context_pad
        self.pool_size = pool_size
        self.chunk_size = chunk_size
        self.score_thresh = score_thresh
        self.nms_thresh = nms_thresh
        self.detections_per_img = detections_per_img
        # Optional per-class linear SVMs replacing the softmax scores at test time (``head: svm``);
        # fitted after fine-tuning by ``detect.detectors.svm.fit_svms``.
        self.svm = None
        self.use_svm = False

    def region_features(self, crops: Tensor) -> Tensor:
        """(R, 3, S, S) crops -> (R, M) MLP features (the "fc7" of R-CNN)."""
        fmap = backbone_map(self.backbone(crops))  # (R, K, s, s)
        pooled = F.adaptive_avg_pool2d(fmap, self.pool_size)  # (R, K, p, p)
        return self.box_head(pooled)

    def features_for(self, images: Tensor, boxes: list[Tensor]) -> Tensor:
        """Features of all boxes of all images, computed in chunks of ``chunk_size`` crops -> (R, M)."""
        chunks = [(i, s) for i, b in enumerate(boxes) for s in range(0, b.shape[0], self.chunk_size)]
        outs = []
        for i, s in chunks:
            crops = crop_and_warp(images[i:i + 1], [boxes[i][s:s + self.chunk_size]], self.crop_size,
                                  self.context_pad)
            outs.append(self.region_features(crops))
        if not outs:
            return images.new_zeros((0, self.box_predictor.cls_score.in_features))
        return torch.cat(outs)

    def forward(self, features, proposals: list[Tensor], image_sizes: list[tuple[int, int]],
                targets: list[dict[str, Tensor]] | None = None, images=None):
        tensors = images.tensors
        if self.training:
            if targets is None:
                raise ValueError("CropHead needs targets in training mode")
            sampled = self.sampler(proposals, targets)
            crops = crop_and_warp(tensors, sampled.boxes, self.crop_size, self.context_pad)
            class_logits, box_regression = self.box_predictor(self.region_features(crops))
            losses = classification_and_box_loss(class_logits, box_regression, torch.cat(sampled.labels),
                                                 torch.cat(sampled.regression_targets))
            return [], losses
        feats = self.features_for(tensors, proposals)
        class_logits, box_regression = self.box_predictor(feats)
        use_svm = self.use_svm and self.svm is not None and bool(self.svm.fitted)
        scores = self.svm(feats) if use_svm else F.softmax(class_logits, -1)
        return postprocess_detections(scores, box_regression, proposals, image_sizes, self.box_coder,
                                      self.score_thresh, self.nms_thresh, self.detections_per_img), {}


def crop_head_from_config(config, num_classes: int, context_pad: float | None = None) -> CropHead:
    """A ``CropHead`` owning a fresh ``config.model.backbone`` (same name/width/seed as every rung)."""
    from detect.backbones import backbone_from_config

    crop, head, test = config.model.crop, config.model.roi_head, config.test
    box_coder = BoxCoder(tuple(head.bbox_reg_weights))
    sampler = RCNNSampler(box_coder, batch_size=crop.batch_size, positive_fraction=crop.positive_fraction,
                          fg_iou_thresh=crop.fg_iou_thresh, bg_iou_hi=crop.bg_iou_thresh_hi,
                          bg_iou_lo=crop.bg_iou_thresh_lo)
    return CropHead(
        backbone_from_config(config.model.backbone, seed=config.seed), num_classes,
        crop_size=crop.size, context_pad=crop.context_pad if context_pad is None else context_pad,
        pool_size=crop.pool_size, representation_size=head.representation_size, sampler=sampler,
        bbox_reg_weights=head.bbox_reg_weights, chunk_size=crop.chunk_size,
        score_thresh=test.score_thresh, nms_thresh=test.nms_thresh,
        detections_per_img=test.detections_per_image,
    )


def build_rcnn(config, num_classes: int):
    """R-CNN: precomputed (Selective Search) proposals -> crop-and-warp -> backbone -> head."""
    from detect.detectors.base import Detector
    from detect.detectors.faster_rcnn import transform_from_config
    from detect.detectors.precomputed import PrecomputedSource
    from detect.detectors.svm import LinearSVMs

    head = crop_head_from_config(config, num_classes)
    # Always present, so a model.pt loads whichever head the config names; scores come from
    # the SVMs only with ``head: svm`` and once they are fitted.
    head.svm = LinearSVMs(head.box_predictor.cls_score.in_features, num_classes)
    head.use_svm = config.model.crop.head == "svm"
    source = PrecomputedSource(config.proposals.top_n_train, config.proposals.top_n_test)
    return Detector(transform_from_config(config), None, source, head, rung="rcnn")
