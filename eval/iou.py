"""Intersection over union of axis-aligned boxes, in float64 (numpy only): the one IoU of ``eval/``.

Boxes are ``[x1, y1, x2, y2]`` with x2/y2 exclusive (README.md, Datasets), so the area of
a box is ``(x2 - x1) * (y2 - y1)`` with no ``+1``: on boxes converted from VOC's
1-based inclusive integers this equals the devkit's ``+1`` IoU. The arithmetic
is pycocotools' ``bbIou`` (an intersection counts only when both its sides are
positive), so the VOC and COCO protocols, the error analysis and proposal
recall all measure overlap with the same expression.
"""

from __future__ import annotations

import numpy as np


def box_area(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) boxes -> (N,) areas, float64."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def gathered_iou(det_boxes: np.ndarray, gt_boxes: np.ndarray, crowd: np.ndarray | None = None,
                 det_area: np.ndarray | None = None, gt_area: np.ndarray | None = None) -> np.ndarray:
    """IoU of each detection with its own row of objects: (n, 4) and (n, g, 4) -> (n, g) float64.

    ``gt_boxes`` may also be (1, g, 4), shared by every row (see ``box_iou``).
    Against a crowd object (``crowd`` (n, g) bool) the union is the
    detection's area alone, as in pycocotools. ``det_area`` (n,) / ``gt_area``
    (n, g) default to the box areas; COCO readers pass the file's ``w * h``.
    """
    d = det_boxes[:, None, :]
    iw = np.minimum(d[..., 2], gt_boxes[..., 2]) - np.maximum(d[..., 0], gt_boxes[..., 0])
    ih = np.minimum(d[..., 3], gt_boxes[..., 3]) - np.maximum(d[..., 1], gt_boxes[..., 1])
    overlap = (iw > 0) & (ih > 0)
    inter = np.where(overlap, iw * ih, 0.0)
    if det_area is None:
        det_area = (det_boxes[:, 2] - det_boxes[:, 0]) * (det_boxes[:, 3] - det_boxes[:, 1])
    if gt_area is None:
        gt_area = (gt_boxes[..., 2] - gt_boxes[..., 0]) * (gt_boxes[..., 3] - gt_boxes[..., 1])
    union = det_area[:, None] + gt_area - inter
    if crowd is not None:
        union = np.where(crowd, det_area[:, None], union)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(overlap & (union > 0), inter / union, 0.0)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, 4) and (M, 4) boxes -> (N, M) IoU matrix, float64; 0 where the boxes do not overlap."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    return gathered_iou(a, b[None])  # every row of ``a`` against the same M objects
