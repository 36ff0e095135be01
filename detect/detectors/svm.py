"""R-CNN's optional per-class linear SVMs with hard-negative mining (``head: svm``).

The R-CNN paper (section 2.3, appendix B) fine-tunes the network with softmax,
then trains one linear SVM per class on the fine-tuned features: positives are
the ground-truth boxes of that class only, negatives are proposals with
IoU < 0.3 to every ground-truth box of that class (the grey zone is ignored),
and the negative set is grown by hard-negative mining — train on a start set,
add the negatives that violate the margin (score > -1), retrain. At test time
the SVM scores replace the softmax probabilities.

Here the SVM is a squared-hinge, L2-regularised linear model per class fitted
by full-batch L-BFGS in torch (the paper used liblinear with the same loss).
Scores are passed through a sigmoid so the shared post-processing's score
threshold keeps its meaning; the sigmoid is monotone, so AP is unchanged.

Shapes: features (R, M) float; per-class max IoU (R, C); scores (R, C+1).
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import Tensor, nn
from torchvision.ops import boxes as box_ops


class SVMStage(nn.Module):
    """C one-vs-rest linear SVMs on the crop head's M-dim region features, fitted after fine-tuning.

    Given to the crop head at construction. The training engine (``detect.train``) fits it
    through the detector's own forward: inside ``collect()`` an eval-mode forward with
    targets hands each image's features to :meth:`observe` instead of detecting, then
    :meth:`fit` trains the SVMs. Until fitted (or with ``enabled=False``: ``head: softmax``)
    the head keeps its softmax scores; the parameters exist either way so one model.pt
    layout serves both.

    Args:
        num_features: M; num_classes: C. enabled: score with the SVMs once fitted.
        neg_iou, rounds, c_reg: see :func:`train_svms`. images: training images whose
        regions feed the SVMs. seed: seed of the negatives' first draw.
    """

    def __init__(self, num_features: int, num_classes: int, *, enabled: bool = True, neg_iou: float = 0.3,
                 rounds: int = 3, c_reg: float = 1e-3, images: int = 100, seed: int = 0):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(num_classes, num_features), requires_grad=False)
        self.bias = nn.Parameter(torch.zeros(num_classes), requires_grad=False)
        # False until fit: an unfitted head falls back to the softmax scores.
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))
        self.enabled, self.neg_iou, self.rounds, self.c_reg = enabled, neg_iou, rounds, c_reg
        self.num_images, self.seed = images, seed
        self.collecting = False  # True inside ``collect()``
        self._seen: list[tuple[Tensor, Tensor, Tensor]] = []  # per image: features, per-class IoU, is-gt

    @property
    def active(self) -> bool:
        """Whether test-time scores come from the SVMs."""
        return self.enabled and bool(self.fitted)

    @contextmanager
    def collect(self):
        """Inside: eval-mode forwards with targets feed :meth:`observe` (the head returns no detections)."""
        self._seen, self.collecting = [], True
        try:
            yield self
        finally:
            self.collecting = False

    def observe(self, feats: Tensor, boxes: Tensor, gt_boxes: Tensor, gt_labels: Tensor) -> None:
        """One image's regions: (R, M) features of ``boxes`` (R, 4), whose first rows are the gt boxes."""
        num_classes = self.weight.shape[0]
        is_gt = torch.arange(len(boxes)) < len(gt_boxes)
        self._seen.append((feats.cpu(), region_labels(boxes, gt_boxes, gt_labels, num_classes).cpu(), is_gt))

    def fit(self) -> None:
        """Train the SVMs on what the last ``collect()`` observed and mark them fitted."""
        if not self._seen:
            return
        feats, ious, is_gt = (torch.cat(parts) for parts in zip(*self._seen))
        self._seen = []
        generator = torch.Generator().manual_seed(self.seed)
        weight, bias = train_svms(feats, ious, is_gt, neg_iou=self.neg_iou, rounds=self.rounds, c_reg=self.c_reg,
                                  generator=generator)
        self.weight.data.copy_(weight)
        self.bias.data.copy_(bias)
        self.fitted.fill_(True)

    def forward(self, feats: Tensor) -> Tensor:
        """(R, M) features -> (R, C+1) scores in (0, 1): sigmoid of the SVM margins, background 0."""
        margins = feats @ self.weight.T + self.bias  # (R, C)
        return torch.cat([margins.new_zeros((margins.shape[0], 1)), torch.sigmoid(margins)], dim=1)


def region_labels(proposals: Tensor, gt_boxes: Tensor, gt_labels: Tensor, num_classes: int) -> Tensor:
    """(P, C) max IoU of each proposal with the ground truth of each class (0 where a class is absent)."""
    out = proposals.new_zeros((proposals.shape[0], num_classes))
    if gt_boxes.numel() == 0 or proposals.numel() == 0:
        return out
    iou = box_ops.box_iou(proposals, gt_boxes.to(proposals.dtype))  # (P, G)
    for c in gt_labels.unique().tolist():
        out[:, c - 1] = iou[:, gt_labels == c].max(dim=1).values
    return out


def fit_svm(pos: Tensor, neg: Tensor, c_reg: float = 1e-3, pos_weight: float = 2.0,
            steps: int = 50) -> tuple[Tensor, Tensor]:
    """One linear SVM: squared hinge on (pos, neg) features + c_reg/2 |w|^2 -> (w (M,), b ())."""
    x = torch.cat([pos, neg]).detach()
    y = torch.cat([pos.new_ones(len(pos)), -pos.new_ones(len(neg))])
    sample_w = torch.cat([pos.new_full((len(pos),), pos_weight), pos.new_ones(len(neg))])
    w = torch.zeros(x.shape[1], requires_grad=True)
    b = torch.zeros((), requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        hinge = torch.clamp(1 - y * (x @ w + b), min=0)
        loss = (sample_w * hinge.pow(2)).sum() / sample_w.sum() + 0.5 * c_reg * w.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach(), b.detach()


def train_svms(feats: Tensor, ious: Tensor, is_gt: Tensor, *, neg_iou: float = 0.3,
               start_negatives: int = 2000, rounds: int = 3, c_reg: float = 1e-3,
               generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Per-class SVMs with hard-negative mining.

    Args:
        feats: (R, M) features of all training regions (ground-truth boxes and proposals).
        ious: (R, C) max IoU of each region with each class's ground truth (``region_labels``).
        is_gt: (R,) bool, the region is a ground-truth box (the only positives, as in the paper).
        neg_iou: negatives have IoU below this with every box of the class (paper: 0.3).
        start_negatives: random negatives in the first round; each later round adds the
            negatives inside the margin (score > -1) of the current SVM.
    Returns: weight (C, M) and bias (C,).
    """
    num_classes = ious.shape[1]
    weight, bias = feats.new_zeros((num_classes, feats.shape[1])), feats.new_zeros(num_classes)
    for c in range(num_classes):
        pos = feats[is_gt & (ious[:, c] >= 0.999)]
        neg_idx = torch.where(ious[:, c] < neg_iou)[0]
        if len(pos) == 0 or len(neg_idx) == 0:
            bias[c] = -10.0  # a class never seen in training never fires
            continue
        order = torch.randperm(len(neg_idx), generator=generator)
        active = neg_idx[order[:start_negatives]]
        for _ in range(rounds):
            w, b = fit_svm(pos, feats[active], c_reg=c_reg)
            hard = neg_idx[(feats[neg_idx] @ w + b) > -1.0]  # margin violators among all negatives
            grown = torch.unique(torch.cat([active, hard]))
            if len(grown) == len(active):
                break
            active = grown
        weight[c], bias[c] = w, b
    return weight, bias
