"""Fast R-CNN: Faster R-CNN with its RPN swapped for precomputed (Selective Search) proposals.

Exactly the Faster R-CNN detector — same backbone, same ``RegionHeads`` (RoI
pooling on the shared feature map, two-layer MLP, softmax + class-specific box
deltas, multi-task loss, RoI sampling per ``model.roi_head``) — with a
``PrecomputedSource`` where the RPN was, as detectron2's ``fast_rcnn_R_50_FPN``
config does with ``PrecomputedProposals``. The backbone runs once per image;
every proposal reads its features from that one map: the saving over R-CNN.
"""

from __future__ import annotations

from detect.backbones import backbone_from_config
from detect.detectors.base import Detector
from detect.detectors.faster_rcnn import region_heads_from_config, transform_from_config
from detect.detectors.precomputed import PrecomputedSource


def build_fast_rcnn(config, num_classes: int) -> Detector:
    """Fast R-CNN for ``num_classes`` object classes; proposals come from ``config.proposals``."""
    backbone = backbone_from_config(config.model.backbone, seed=config.seed)
    return Detector(
        transform_from_config(config),
        backbone,
        PrecomputedSource(config.proposals.top_n_train, config.proposals.top_n_test),
        region_heads_from_config(config, backbone.out_channels, backbone.featmap_names, num_classes),
        rung="fast_rcnn",
    )
