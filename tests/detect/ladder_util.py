"""Helpers shared by the ladder rungs' tests (issue 6): tiny configs, batches and a training loop."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from detect.build import build_detector
from detect.config import load_config
from detect.data.voc import VOCDataset

REPO = Path(__file__).resolve().parents[2]
LADDER = REPO / "configs" / "ladder"


def small_config(rung: str, *overrides: str):
    """The rung's ladder config, shrunk for tests (narrow backbone, small crops, few proposals)."""
    return load_config(LADDER / f"{rung}.yaml", ["model.backbone.width=8", *overrides])


def batch(root: Path, split: str = "train", n: int = 4, with_proposals: bool = False):
    """``n`` images as (3, H, W) float tensors, their targets (labels 1..C) and optional proposals."""
    ds = VOCDataset(root, split)
    images, targets, proposals = [], [], []
    rng = np.random.default_rng(0)
    for i in range(n):
        img, ann = ds[i]
        images.append(torch.from_numpy(np.array(img)).permute(2, 0, 1).float() / 255)
        boxes = torch.from_numpy(ann.boxes).float()
        targets.append({"boxes": boxes, "labels": torch.from_numpy(ann.labels) + 1})
        if with_proposals:  # jittered ground truth + random boxes stand in for Selective Search
            h, w = img.shape[:2]
            jitter = boxes.repeat(8, 1) + torch.from_numpy(rng.normal(0, 3, (8 * len(boxes), 4))).float()
            xy = torch.from_numpy(rng.uniform(0, [w - 16, h - 16], (40, 2))).float()
            wh = torch.from_numpy(rng.uniform(8, 48, (40, 2))).float()
            proposals.append(torch.cat([jitter, torch.cat([xy, xy + wh], 1)]).clamp(0, max(h, w)))
    return images, targets, (proposals if with_proposals else None), ds.class_names


def train_steps(model, images, targets, proposals, steps: int, lr: float = 2e-3) -> list[float]:
    """``steps`` AdamW steps on one fixed batch; returns the total loss before each step."""
    torch.manual_seed(0)
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    history = []
    for _ in range(steps):
        losses = model(images, targets, proposals)
        loss = sum(losses.values())
        history.append(float(loss.detach()))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return history


def build(rung: str, num_classes: int, *overrides: str):
    return build_detector(small_config(rung, *overrides), num_classes)


def assert_detection_schema(dets, n_images: int, num_classes: int, sizes) -> None:
    """Eval output: per image boxes (D, 4) inside the original image, scores (D,), labels in 1..C."""
    assert len(dets) == n_images
    for d, (h, w) in zip(dets, sizes):
        assert set(d) >= {"boxes", "scores", "labels"}
        n = d["boxes"].shape[0]
        assert d["boxes"].shape == (n, 4) and d["scores"].shape == (n,) and d["labels"].shape == (n,)
        assert d["labels"].dtype == torch.int64
        if n:
            assert int(d["labels"].min()) >= 1 and int(d["labels"].max()) <= num_classes
            assert float(d["boxes"][:, [0, 2]].min()) >= 0 and float(d["boxes"][:, [0, 2]].max()) <= w
            assert float(d["boxes"][:, [1, 3]].min()) >= 0 and float(d["boxes"][:, [1, 3]].max()) <= h
            assert float(d["scores"].min()) >= 0 and float(d["scores"].max()) <= 1
