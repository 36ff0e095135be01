"""The box losses of the regression rung's one box per image: ``l2``, ``smooth_l1`` and ``bins``.

``l2`` and ``smooth_l1`` regress four numbers: the R-CNN deltas of the target box
relative to the whole image (``BoxCoder`` with unit weights: centre offsets in
image widths/heights, log size ratios). ``l2`` is the lecture's loss (CS231n
lecture 11, "classification + localization": an L2 loss on the box coordinates);
``smooth_l1`` is Fast R-CNN's (torchvision's ``fastrcnn_loss``, beta 1/9), less
sensitive to the outliers an L2 loss chases.

``bins`` follows the CS231n notes' advice to prefer a classification over bins
to a fragile L2 regression: each box edge (x1, y1, x2, y2, as a fraction of the
image's width or height) is a softmax over K bins placed at ``k / (K - 1)``,
k = 0..K-1, across the image. The target is soft, split between the two nearest
bins so that its expected value is the edge exactly (distribution focal loss,
Li et al. 2020; LocNet, Gidaris & Komodakis 2016, also classifies edges over
bins); the loss is the cross-entropy against it; the prediction is decoded as the
expected value of the softmax, a differentiable mean rather than an argmax.

All three take per-image rows: ``pred`` (P, 4) or (P, 4, K), ``goal`` (P, 4) and
return the sum over the P rows divided by ``n`` (every image of the batch, as
``fastrcnn_loss`` divides), so an image without an object weighs in with zero.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

BOX_LOSSES = ("l2", "smooth_l1", "bins")
SMOOTH_L1_BETA = 1.0 / 9  # torchvision's fastrcnn_loss


def l2_loss(pred: Tensor, goal: Tensor, n: int) -> Tensor:
    """Sum of squared errors of the four numbers, summed over rows, over ``n`` images."""
    return ((pred - goal) ** 2).sum() / max(n, 1)


def smooth_l1_loss(pred: Tensor, goal: Tensor, n: int) -> Tensor:
    """Fast R-CNN's smooth-L1 (beta 1/9), summed over rows and the four numbers, over ``n`` images."""
    return F.smooth_l1_loss(pred, goal, beta=SMOOTH_L1_BETA, reduction="sum") / max(n, 1)


def bin_positions(bins: int, like: Tensor) -> Tensor:
    """(K,) bin positions ``k / (K - 1)``: 0 and 1 (the image's sides) are bins themselves."""
    return torch.linspace(0.0, 1.0, bins, dtype=like.dtype, device=like.device)


def soft_bin_targets(edges: Tensor, bins: int) -> Tensor:
    """(..., ) edges in [0, 1] -> (..., K) targets on the two nearest bins, whose expected value is the edge.

    An edge at position ``s = e * (K - 1)`` puts ``1 - (s - floor(s))`` on bin ``floor(s)`` and the rest on
    the bin above (all on the last bin at ``e = 1``). Edges outside [0, 1] are clamped to it.
    """
    s = edges.clamp(0.0, 1.0) * (bins - 1)
    lower = s.floor().clamp(max=bins - 2).to(torch.int64)  # e = 1: lower K-2, weight 1 on K-1
    upper_w = s - lower.to(s.dtype)
    target = edges.new_zeros(*edges.shape, bins)
    target.scatter_(-1, lower.unsqueeze(-1), (1.0 - upper_w).unsqueeze(-1))
    target.scatter_add_(-1, (lower + 1).unsqueeze(-1), upper_w.unsqueeze(-1))
    return target


def decode_bins(logits: Tensor) -> Tensor:
    """(..., K) logits -> (...) edges in [0, 1]: the expected bin position under the softmax."""
    return F.softmax(logits, -1) @ bin_positions(logits.shape[-1], logits)


def bins_loss(logits: Tensor, edges: Tensor, n: int) -> Tensor:
    """Cross-entropy of (P, 4, K) logits against the soft two-bin targets of (P, 4) edges.

    Averaged over the four edges (so that its size does not grow with the edges' count), summed over
    rows, over ``n`` images.
    """
    target = soft_bin_targets(edges, logits.shape[-1])
    return -(target * F.log_softmax(logits, -1)).sum(-1).mean(-1).sum() / max(n, 1)
