"""The base of our RoI poolers: torchvision's ``MultiScaleRoIAlign`` interface, our per-level pooling.

torchvision's ``FasterRCNN`` type-checks its pooler against ``MultiScaleRoIAlign``,
so every pooler subclasses it and keeps its call:
``forward(features: dict[name, (B, C, H, W)], boxes: list[(R_i, 4)], image_sizes)``
-> ``(sum R_i, C, out_h, out_w)``. With several feature maps, each box goes to the
FPN level torchvision's ``LevelMapper`` picks; subclasses only say how to pool
one level (``_pool``).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchvision.ops import MultiScaleRoIAlign
from torchvision.ops.poolers import _filter_input, _setup_scales


class LevelPooler(MultiScaleRoIAlign):
    """Shared plumbing: pick the feature level of every box, pool each level with ``_pool``."""

    def forward(self, x: dict[str, Tensor], boxes: list[Tensor], image_shapes: list[tuple[int, int]]) -> Tensor:
        feats = _filter_input(x, self.featmap_names)
        if self.scales is None or self.map_levels is None:
            self.scales, self.map_levels = _setup_scales(feats, image_shapes, self.canonical_scale, self.canonical_level)
        batch_idx = torch.cat([torch.full((len(b),), i, dtype=torch.int64, device=b.device) for i, b in enumerate(boxes)])
        rois = torch.cat(boxes, dim=0)
        if len(feats) == 1:
            return self._pool(feats[0], rois, batch_idx, self.scales[0])
        levels = self.map_levels(boxes)
        out = rois.new_zeros((len(rois), feats[0].shape[1], *self.output_size), dtype=feats[0].dtype)
        for level, (feat, scale) in enumerate(zip(feats, self.scales)):
            keep = torch.where(levels == level)[0]
            if len(keep):
                out = out.index_put((keep,), self._pool(feat, rois[keep], batch_idx[keep], scale))
        return out

    def _pool(self, feat: Tensor, rois: Tensor, batch_idx: Tensor, scale: float) -> Tensor:
        raise NotImplementedError
