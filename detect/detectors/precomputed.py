"""The precomputed-proposal source: Selective Search (or any cached boxes) in place of an RPN.

As detectron2's ``PrecomputedProposals``: Fast R-CNN and R-CNN are detectors
whose proposal stage only *reads* boxes computed outside the network. The
detector has already rescaled them from original-image to resized-image
coordinates with its transform; this source cleans them up the way an RPN's
output is cleaned: clip to the image, drop boxes thinner than ``min_size``,
keep the first ``top_n`` (the proposal method's own ranking).

Proposal-source API (docs/architecture.md): ``forward(images: ImageList, features,
targets, proposals: list[(P_i, 4)]) -> (list[(P'_i, 4)], {})``. No losses.
"""

from __future__ import annotations

from torch import Tensor, nn
from torchvision.ops import boxes as box_ops


class PrecomputedSource(nn.Module):
    """Pass precomputed proposals through: clip, drop tiny boxes, keep the top ``top_n``.

    Args:
        top_n_train / top_n_test: proposals kept per image (R-CNN / Fast R-CNN papers: 2000).
        min_size: minimum box side in resized-image pixels.
    """

    def __init__(self, top_n_train: int = 2000, top_n_test: int = 2000, min_size: float = 1.0):
        super().__init__()
        self.top_n_train = top_n_train
        self.top_n_test = top_n_test
        self.min_size = min_size

    def forward(self, images, features=None, targets=None, proposals: list[Tensor] | None = None):
        if proposals is None:
            raise ValueError("this detector reads precomputed proposals: pass proposals=[(P_i, 4) boxes per image]")
        if len(proposals) != len(images.image_sizes):
            raise ValueError(f"{len(proposals)} proposal lists for {len(images.image_sizes)} images")
        top_n = self.top_n_train if self.training else self.top_n_test
        out = []
        for boxes, size in zip(proposals, images.image_sizes):
            boxes = box_ops.clip_boxes_to_image(boxes.to(images.tensors.dtype), size)
            keep = box_ops.remove_small_boxes(boxes, self.min_size)
            out.append(boxes[keep][:top_n])
        return out, {}
