"""Proposal quality: recall at IoU thresholds for the top N boxes, ABO per class and MABO.

Definitions (Uijlings et al., IJCV 2013, section 5.1; Hosang et al. 2015 for recall@N):

* A ground-truth box is *recalled* at threshold t by the top N proposals when its
  best IoU with any of them is >= t. Recall = recalled boxes / all boxes.
* The Average Best Overlap of a class is the mean, over that class's ground-truth
  boxes, of the best IoU any proposal of the image reaches; MABO is the mean of
  the per-class ABOs over classes that have ground truth.
* ``difficult`` ground truth is left out of everything, as in the VOC protocol.

IoU comes from ``eval.iou.box_iou``, the same expression the mAP calculator
matches with (``eval.iou.gathered_iou``). The module is numpy only;
matplotlib is imported inside ``plot_recall_vs_n``.

Shapes: per image, gt boxes (G, 4) float, labels (G,) int, difficult (G,) bool,
proposals (P, 4) float ranked best first.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from eval.files import atomic_write_bytes
from eval.iou import box_iou

DEFAULT_TOP_NS: tuple[int | None, ...] = (10, 100, 300, 1000, 2000, None)
THRESHOLDS = (0.5, 0.7)


def _n_key(n: int | None) -> str:
    return "all" if n is None else str(int(n))


@dataclass
class ProposalRecall:
    """Result of ``proposal_recall``; ``to_json()`` gives the plain dict written by the CLI."""

    class_names: tuple[str, ...]
    top_ns: tuple[int | None, ...]
    num_images: int
    num_gt: int
    boxes_per_image: float
    recall: dict[float, dict[str, float | None]]  # threshold -> {"10": r, ..., "all": r}
    abo_per_class: dict[str, float | None]  # None for a class without ground truth
    mabo: float | None
    mabo_at: dict[str, float | None] = field(default_factory=dict)  # MABO for the top N
    seconds_per_image: float | None = None

    def to_json(self) -> dict:
        return {
            "num_images": self.num_images,
            "num_gt": self.num_gt,
            "boxes_per_image": self.boxes_per_image,
            "seconds_per_image": self.seconds_per_image,
            "recall": {f"{t:.1f}": dict(v) for t, v in self.recall.items()},
            "abo_per_class": dict(self.abo_per_class),
            "mabo": self.mabo,
            "mabo_at": dict(self.mabo_at),
        }


def _best_overlaps(gt: np.ndarray, props: np.ndarray, ns: list[int]) -> np.ndarray:
    """(G, 4) gt and (P, 4) ranked proposals -> (G, len(ns)) best IoU within the top n of each."""
    out = np.zeros((len(gt), len(ns)), np.float64)
    if len(gt) == 0 or len(props) == 0:
        return out
    running = np.maximum.accumulate(box_iou(gt, props), axis=1)  # (G, P): best within top j+1
    for c, n in enumerate(ns):
        if n > 0:
            out[:, c] = running[:, min(n, len(props)) - 1]
    return out


def proposal_recall(
    gt_boxes_per_image,
    gt_labels_per_image,
    proposals_per_image,
    class_names,
    top_ns=DEFAULT_TOP_NS,
    difficult=None,
    seconds_per_image: float | None = None,
) -> ProposalRecall:
    """Recall@{0.5, 0.7} for each N in ``top_ns`` (None = all boxes), ABO per class and MABO.

    The three per-image sequences must have the same length; ``difficult`` is an
    optional matching sequence of (G,) bool arrays.
    """
    n_img = len(gt_boxes_per_image)
    if len(gt_labels_per_image) != n_img or len(proposals_per_image) != n_img:
        raise ValueError("proposal_recall: gt boxes, gt labels and proposals need one entry per image")
    if difficult is not None and len(difficult) != n_img:
        raise ValueError("proposal_recall: difficult needs one entry per image")
    top_ns = tuple(top_ns)
    max_p = max((len(np.asarray(p).reshape(-1, 4)) for p in proposals_per_image), default=0)
    ns = [max_p if n is None else int(n) for n in top_ns]
    best_rows, label_rows = [], []
    total_props = 0
    for i in range(n_img):
        gt = np.asarray(gt_boxes_per_image[i], np.float64).reshape(-1, 4)
        labels = np.asarray(gt_labels_per_image[i], np.int64).reshape(-1)
        props = np.asarray(proposals_per_image[i], np.float64).reshape(-1, 4)
        total_props += len(props)
        keep = np.ones(len(gt), bool)
        if difficult is not None:
            keep = ~np.asarray(difficult[i], bool).reshape(-1)
        best_rows.append(_best_overlaps(gt[keep], props, ns))
        label_rows.append(labels[keep])
    best = np.concatenate(best_rows) if best_rows else np.zeros((0, len(ns)))
    labels = np.concatenate(label_rows) if label_rows else np.zeros(0, np.int64)
    return _summarise(best, labels, tuple(class_names), top_ns, n_img, total_props, seconds_per_image)


def _summarise(best, labels, class_names, top_ns, n_img, total_props, seconds) -> ProposalRecall:
    keys = [_n_key(n) for n in top_ns]
    num_gt = len(best)
    recall = {
        t: {k: (float((best[:, c] >= t).mean()) if num_gt else None) for c, k in enumerate(keys)}
        for t in THRESHOLDS
    }
    abo_at: dict[str, dict[str, float | None]] = {}
    for c, k in enumerate(keys):
        abo_at[k] = {
            name: (float(best[labels == ci, c].mean()) if (labels == ci).any() else None)
            for ci, name in enumerate(class_names)
        }
    all_col = keys.index("all") if "all" in keys else len(keys) - 1
    abo = abo_at[keys[all_col]] if keys else {name: None for name in class_names}

    def _mean(values):
        vals = [v for v in values if v is not None]
        return float(np.mean(vals)) if vals else None

    return ProposalRecall(
        class_names=class_names,
        top_ns=top_ns,
        num_images=n_img,
        num_gt=num_gt,
        boxes_per_image=(total_props / n_img) if n_img else 0.0,
        recall=recall,
        abo_per_class=abo,
        mabo=_mean(abo.values()),
        mabo_at={k: _mean(v.values()) for k, v in abo_at.items()},
        seconds_per_image=seconds,
    )


def plot_recall_vs_n(results_by_name: dict[str, ProposalRecall], path: str | os.PathLike) -> None:
    """Recall@0.5 (solid) and @0.7 (dashed) against the number of boxes, one colour per source.

    "all" is drawn at the source's mean boxes per image. Written as PNG atomically.
    """
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    for idx, (name, res) in enumerate(results_by_name.items()):
        colour = f"C{idx % 10}"
        xs = [res.boxes_per_image if n is None else min(n, max(res.boxes_per_image, 1)) for n in res.top_ns]
        for t, style in ((0.5, "-"), (0.7, "--")):
            ys = [res.recall[t][_n_key(n)] for n in res.top_ns]
            pts = sorted((x, y) for x, y in zip(xs, ys) if y is not None and x > 0)
            if pts:
                ax.plot(*zip(*pts), style, marker="o", color=colour, label=f"{name} IoU>={t}")
    ax.set_xscale("log")
    ax.set_xlabel("proposals per image (top N)")
    ax.set_ylabel("recall")
    ax.set_ylim(0, 1.02)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


# Average recall (Hosang et al., TPAMI 2016): recall averaged over IoU thresholds 0.5:0.05:0.95, the same
# thresholds as COCO's (its np.linspace, so each threshold is the same double). It tracks detection mAP
# where recall at 0.5 alone does not.
AR_THRESHOLDS = np.linspace(0.5, 0.95, 10)
AR_TOP_NS: tuple[int, ...] = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000)


def average_recall_curve(gt_boxes_per_image, proposals_per_image, top_ns=AR_TOP_NS, difficult=None) -> dict:
    """Average recall and recall@0.5 / @0.7 of the top N proposals, for each N, over a set of images.

    Proposals are ranked best first per image; an N beyond an image's count uses all its boxes. The
    curve stops at the largest N any image reaches, and ``"all"`` holds the values with every box.
    Difficult ground truth is left out. Returns ``{"n": [...], "average_recall": [...], "recall_50": [...],
    "recall_70": [...], "all": {"boxes_per_image", "average_recall", "recall_50", "recall_70"}, "num_gt"}``.
    """
    props = [np.asarray(p, np.float64).reshape(-1, 4) for p in proposals_per_image]
    most = max((len(p) for p in props), default=0)
    ns = [n for n in top_ns if n < most] + [most]
    rows = []
    for i, gt in enumerate(gt_boxes_per_image):
        gt = np.asarray(gt, np.float64).reshape(-1, 4)
        if difficult is not None:
            gt = gt[~np.asarray(difficult[i], bool).reshape(-1)]
        rows.append(_best_overlaps(gt, props[i], ns))
    best = np.concatenate(rows) if rows else np.zeros((0, len(ns)))  # (G, len(ns)) best IoU in the top n
    if len(best) == 0:
        ar = r50 = r70 = [None] * len(ns)
    else:
        hits = best[:, :, None] >= AR_THRESHOLDS[None, None, :]  # (G, N, T)
        ar = hits.mean(axis=(0, 2)).tolist()
        r50, r70 = (best >= 0.5).mean(axis=0).tolist(), (best >= 0.7).mean(axis=0).tolist()
    return {
        "n": ns[:-1], "average_recall": ar[:-1], "recall_50": r50[:-1], "recall_70": r70[:-1],
        "all": {"boxes_per_image": float(np.mean([len(p) for p in props])) if props else 0.0,
                "average_recall": ar[-1], "recall_50": r50[-1], "recall_70": r70[-1]},
        "num_gt": int(len(best)),
    }
