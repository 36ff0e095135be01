"""The crop head (``model.region_head: crop``): R-CNN's and the sliding-window rung's region classifier.

Every region is cut out of the (normalised) image and warped to a fixed square
(``detect.ops.crop_and_warp``), then the *whole backbone* runs on each crop:
no computation is shared between overlapping regions — the cost Fast R-CNN
removes. After the backbone the head is the same as Fast/Faster R-CNN's:
torchvision's ``TwoMLPHead`` + ``FastRCNNPredictor`` (softmax over background
+ C classes, class-specific box deltas) trained with torchvision's
``fastrcnn_loss`` and post-processed by the same function as the RoI head, so
the rungs differ only in how a region's features are obtained. R-CNN's SVM
stage (``detect.detectors.svm.SVMStage``) is given at construction; its scores
replace the softmax once the training engine has fitted it.

    crops (R, 3, S, S) -> backbone -> (R, K, s, s) -> avg-pool (R, K, p, p)
        -> TwoMLPHead (R, M) -> cls_score (R, C+1), bbox_pred (R, (C+1)*4)

Region-head API (docs/architecture.md): ``forward(features, proposals, image_sizes,
targets, images, score_thresh) -> (detections, losses)``; ``features`` is ignored (the
detector skips its own backbone when no part reads it), ``images`` is the transform's
ImageList, proposals and targets are in its (resized) coordinates.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.detection._utils import BoxCoder
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.roi_heads import fastrcnn_loss

from detect.detectors.rcnn import RCNNSampler, postprocess_detections
from detect.detectors.svm import SVMStage
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
        chunk_size: crops per backbone call at test time (bounds memory; smaller chunks ran faster than one batch).
        score_thresh, nms_thresh, detections_per_img: test-time post-processing.
        svm: R-CNN's SVM stage (scores replace the softmax once fitted), or None.
    """

    def __init__(self, backbone: nn.Module, num_classes: int, *, crop_size: int = 48,
                 context_pad: float = 0.0, pool_size: int = 3, representation_size: int = 128,
                 sampler: RCNNSampler | None = None, bbox_reg_weights=(10.0, 10.0, 5.0, 5.0),
                 chunk_size: int = 256, score_thresh: float = 0.05, nms_thresh: float = 0.5,
                 detections_per_img: int = 100, svm: SVMStage | None = None):
        super().__init__()
        self.backbone = backbone
        self.box_head = TwoMLPHead(backbone.out_channels * pool_size * pool_size, representation_size)
        self.box_predictor = FastRCNNPredictor(representation_size, num_classes + 1)
        self.box_coder = BoxCoder(tuple(bbox_reg_weights))
        self.sampler = sampler or RCNNSampler()
        self.crop_size = crop_size
        self.context_pad = context_pad
        self.pool_size = pool_size
        self.chunk_size = chunk_size
        self.score_thresh = score_thresh
        self.nms_thresh = nms_thresh
        self.detections_per_img = detections_per_img
        self.svm = svm

    @property
    def fit_stage(self) -> SVMStage | None:
        """The stage the training engine fits after the SGD iterations (``head: svm``), or None."""
        return self.svm if self.svm is not None and self.svm.enabled else None

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # model.pt files written before every crop head carried an SVM stage (sliding windows) lack its
        # entries: load them as the unfitted stage they would have been.
        if self.svm is not None:
            for name, value in self.svm.state_dict().items():
                state_dict.setdefault(f"{prefix}svm.{name}", value)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

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
                targets: list[dict[str, Tensor]] | None = None, images=None, score_thresh: float | None = None):
        tensors = images.tensors
        if self.training:
            if targets is None:
                raise ValueError("CropHead needs targets in training mode")
            sampled = self.sampler(proposals, targets, self.box_coder)
            crops = crop_and_warp(tensors, sampled.boxes, self.crop_size, self.context_pad)
            class_logits, box_regression = self.box_predictor(self.region_features(crops))
            loss_cls, loss_box = fastrcnn_loss(class_logits, box_regression, sampled.labels, sampled.regression_targets)
            return [], {"loss_classifier": loss_cls, "loss_box_reg": loss_box}
        if self.svm is not None and self.svm.collecting:
            self._observe(tensors, proposals, targets)
            return [], {}
        feats = self.features_for(tensors, proposals)
        class_logits, box_regression = self.box_predictor(feats)
        scores = self.svm(feats) if self.svm is not None and self.svm.active else F.softmax(class_logits, -1)
        thresh = self.score_thresh if score_thresh is None else score_thresh
        return postprocess_detections(scores, box_regression, proposals, image_sizes, self.box_coder,
                                      thresh, self.nms_thresh, self.detections_per_img), {}

    def _observe(self, tensors: Tensor, proposals: list[Tensor], targets) -> None:
        """SVM stage: the features of each image's ground-truth boxes and proposals, to the stage."""
        if targets is None:
            raise ValueError("the SVM stage collects with targets")
        for i, (props, tgt) in enumerate(zip(proposals, targets)):
            boxes = torch.cat([tgt["boxes"].to(props.dtype), props])
            feats = self.features_for(tensors[i:i + 1], [boxes])
            self.svm.observe(feats, boxes, tgt["boxes"], tgt["labels"])
