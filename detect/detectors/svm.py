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

import torch
from torch import Tensor, nn
from torchvision.ops import boxes as box_ops


class LinearSVMs(nn.Module):
    """C one-vs-rest linear SVMs on M-dim region features; column 0 (background) is constant 0."""

    def __init__(self, num_features: int, num_classes: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(num_classes, num_features), requires_grad=False)
        self.bias = nn.Parameter(torch.zeros(num_classes), requires_grad=False)
        # False until fit: an unfitted head falls back to the softmax scores.
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

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


@torch.no_grad()
def collect_svm_data(model, images, targets, proposals) -> tuple[Tensor, Tensor, Tensor]:
    """Fine-tuned features of one batch's proposals and ground-truth boxes for SVM training.

    ``model`` is an R-CNN ``Detector`` (crop head) in eval mode; ``images`` (3, H, W) floats,
    ``targets`` dicts with boxes (original pixels) and labels 1..C, ``proposals`` (P_i, 4)
    original pixels. Returns features (R, M), per-class max IoU (R, C), is-ground-truth (R,).
    """
    from torchvision.models.detection.transform import resize_boxes

    head = model.roi_heads
    num_classes = head.box_predictor.cls_score.out_features - 1
    image_list, resized = model.transform(images, [dict(t) for t in targets])
    feats, ious, is_gt = [], [], []
    for i, (img, tgt, props) in enumerate(zip(images, resized, proposals)):
        props = resize_boxes(props.to(image_list.tensors.dtype), tuple(img.shape[-2:]), image_list.image_sizes[i])
        (props,), _ = model.rpn(_Single(image_list, i), None, None, [props])
        boxes = torch.cat([tgt["boxes"].to(props.dtype), props])
        feats.append(head.features_for(image_list.tensors[i:i + 1], [boxes]))
        ious.append(region_labels(boxes, tgt["boxes"], tgt["labels"], num_classes))
        is_gt.append(torch.arange(len(boxes)) < len(tgt["boxes"]))
    return torch.cat(feats), torch.cat(ious), torch.cat(is_gt)


class _Single:
    """One image of an ImageList, as the proposal source expects (``tensors``, ``image_sizes``)."""

    def __init__(self, image_list, i: int):
        self.tensors = image_list.tensors[i:i + 1]
        self.image_sizes = [image_list.image_sizes[i]]


def fit_rcnn_svms(model, config, voc, proposals: dict) -> None:
    """R-CNN's SVM stage (``model.crop.head: svm``), run by ``detect.train`` after fine-tuning.

    Uses the first ``model.crop.svm_images`` training images and their cached proposals;
    fills ``model.roi_heads.svm`` and marks it fitted (so model.pt carries the SVMs).
    """
    if config.model.crop.head != "svm" or getattr(model.roi_heads, "svm", None) is None:
        return
    crop = config.model.crop
    was_training = model.training
    model.eval()
    feats, ious, is_gt = [], [], []
    for i in range(min(len(voc), crop.svm_images)):
        image, ann = voc[i]
        x = torch.from_numpy(image.copy()).permute(2, 0, 1).float().div(255).to(next(model.parameters()).device)
        target = {"boxes": torch.from_numpy(ann.boxes).float(), "labels": torch.from_numpy(ann.labels) + 1}
        props = torch.as_tensor(proposals[ann.image_id]).float()
        f, o, g = collect_svm_data(model, [x], [target], [props])
        feats.append(f.cpu())
        ious.append(o)
        is_gt.append(g)
    generator = torch.Generator().manual_seed(config.seed)
    weight, bias = train_svms(torch.cat(feats), torch.cat(ious), torch.cat(is_gt), neg_iou=crop.svm_neg_iou,
                              rounds=crop.svm_rounds, c_reg=crop.svm_c, generator=generator)
    svm = model.roi_heads.svm
    svm.weight.data.copy_(weight)
    svm.bias.data.copy_(bias)
    svm.fitted.fill_(True)
    model.train(was_training)
