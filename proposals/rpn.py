"""The region proposal network as a proposal source (Faster R-CNN's first stage).

Built from torchvision's public pieces (AnchorGenerator, RPNHead,
RegionProposalNetwork) so that its state-dict keys (``head.conv...``,
``head.cls_logits...``, ``head.bbox_pred...``) match torchvision checkpoints.
It takes feature maps and image sizes, not a detector, and has the proposal
source interface every rung's first stage shares:

    forward(images: ImageList, features: dict[name, (B, C, h, w)],
            targets: list[dict] | None, proposals=None)
        -> (list of (P_i, 4) float boxes in resized-image pixels, dict of losses)

``proposals`` (precomputed boxes) is accepted and ignored: the RPN makes its own.
"""

from __future__ import annotations

from torch import Tensor
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.rpn import RegionProposalNetwork, RPNHead


class RPNProposals(RegionProposalNetwork):
    """torchvision's RegionProposalNetwork with the shared proposal-source signature."""

    def forward(  # type: ignore[override]
        self,
        images: ImageList,
        features: dict[str, Tensor],
        targets: list[dict[str, Tensor]] | None = None,
        proposals: list[Tensor] | None = None,
    ) -> tuple[list[Tensor], dict[str, Tensor]]:
        return super().forward(images, features, targets)


def build_rpn(
    in_channels: int,
    *,
    anchor_sizes: list[list[int]],
    aspect_ratios: list[float],
    num_feature_maps: int = 1,
    pre_nms_top_n_train: int = 2000,
    post_nms_top_n_train: int = 2000,
    pre_nms_top_n_test: int = 1000,
    post_nms_top_n_test: int = 1000,
    nms_thresh: float = 0.7,
    fg_iou_thresh: float = 0.7,
    bg_iou_thresh: float = 0.3,
    batch_size_per_image: int = 256,
    positive_fraction: float = 0.5,
    score_thresh: float = 0.0,
) -> RPNProposals:
    """An RPN over ``num_feature_maps`` maps of ``in_channels`` channels.

    ``anchor_sizes`` holds one list of sizes (pixels of the resized image) per map;
    a single list is repeated for every map. Defaults are torchvision's.
    """
    sizes = [list(s) for s in anchor_sizes]
    if len(sizes) == 1 and num_feature_maps > 1:
        sizes = sizes * num_feature_maps
    if len(sizes) != num_feature_maps:
        raise ValueError(f"{len(sizes)} anchor size lists for {num_feature_maps} feature maps")
    anchors = AnchorGenerator(tuple(tuple(s) for s in sizes), (tuple(aspect_ratios),) * len(sizes))
    head = RPNHead(in_channels, anchors.num_anchors_per_location()[0])
    return RPNProposals(
        anchors,
        head,
        fg_iou_thresh,
        bg_iou_thresh,
        batch_size_per_image,
        positive_fraction,
        dict(training=pre_nms_top_n_train, testing=pre_nms_top_n_test),
        dict(training=post_nms_top_n_train, testing=post_nms_top_n_test),
        nms_thresh,
        score_thresh=score_thresh,
    )
