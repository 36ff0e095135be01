"""Per-image ground truth and detections as the calculator takes them, for hand-written test cases."""

from __future__ import annotations

import numpy as np


def gt(boxes, labels, difficult=None) -> dict:
    """Ground truth of one image: (G, 4) boxes, (G,) labels, (G,) difficult flags (all False by default)."""
    boxes = np.array(boxes, np.float64).reshape(-1, 4)
    return {"boxes": boxes, "labels": np.array(labels, np.int64),
            "difficult": np.zeros(len(boxes), bool) if difficult is None else np.array(difficult, bool)}


def dets(boxes, scores, labels) -> dict:
    """Detections of one image: (D, 4) boxes, (D,) scores, (D,) labels."""
    return {"boxes": np.array(boxes, np.float64).reshape(-1, 4), "scores": np.array(scores, np.float64),
            "labels": np.array(labels, np.int64)}
