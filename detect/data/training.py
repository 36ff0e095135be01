"""From a VOC dataset to training batches: targets, flips, precomputed proposals, the batch plan.

The proposals themselves come from ``detect.proposal_route.split_proposals`` (the one route).

A sample is ``(image (3, H, W) float32 in [0, 1], target, proposals)`` with
``target = {"boxes": (N, 4) float32 original pixels, "labels": (N,) int64 in 1..C}``
(dataset label + 1: 0 is background inside models) and ``proposals`` (P, 4)
float32 or None. Difficult objects are left out of training targets, as in the
Fast/Faster R-CNN reference code (evaluation ignores them anyway).

The batch plan is a pure function of (seed, iteration): iteration ``it`` takes
stream positions ``it*B .. it*B+B-1`` of an endless sequence of epochs, each a
permutation of the dataset drawn from ``(seed, epoch)`` together with one coin
per image for the horizontal flip. So a resumed run sees exactly the batches an
uninterrupted run sees, and under DDP rank ``r`` of ``K`` takes every K-th image
of the global batch (a distributed sampler without state).
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from detect.data.tensors import to_tensor
from detect.data.voc import VOCDataset
from eval.errors import InputError


def flip_boxes(boxes: np.ndarray, width: int) -> np.ndarray:
    """Mirror (N, 4) ``[x1, y1, x2, y2]`` boxes (x2 exclusive) in an image ``width`` pixels wide."""
    out = boxes.copy()
    out[:, 0] = width - boxes[:, 2]
    out[:, 2] = width - boxes[:, 0]
    return out


class TrainingSet(Dataset):
    """Indexes ``(image index, flip)`` pairs of a :class:`VOCDataset` into model-ready samples."""

    def __init__(self, voc: VOCDataset, proposals: dict[str, np.ndarray] | None = None, crops=None):
        self.voc = voc
        self.proposals = proposals
        self.crops = crops  # detect/data/object_crops.py: (image, boxes, labels, position) -> a window's sample

    def __len__(self) -> int:
        return len(self.voc)

    def __getitem__(self, item: tuple[int, bool] | tuple[int, bool, int]):
        index, flip = item[:2]  # a batch plan's items also carry their stream position
        try:
            image, ann = self.voc[index]
        except InputError as exc:  # a file that passed the up-front check but does not decode: skip it
            return SkippedImage(str(exc))
        keep = ~ann.difficult
        boxes = ann.boxes[keep].astype(np.float32)
        labels = ann.labels[keep].astype(np.int64) + 1
        props = None
        if self.proposals is not None:
            props = np.asarray(self.proposals[ann.image_id], np.float32).reshape(-1, 4)
        if flip:
            width = image.shape[1]
            image = image[:, ::-1]
            boxes = flip_boxes(boxes, width)
            props = flip_boxes(props, width) if props is not None else None
        if self.crops is not None and len(item) > 2:
            image, boxes, labels = self.crops(image, boxes, labels, item[2])
        target = {"boxes": torch.from_numpy(boxes).reshape(-1, 4), "labels": torch.from_numpy(labels)}
        return to_tensor(image), target, (torch.from_numpy(props) if props is not None else None)


class SkippedImage(str):
    """What ``TrainingSet`` returns for an image that cannot be decoded: the one-line reason."""


def collate(samples):
    """List of samples -> (images, targets, proposals or None, skipped): lists, since sizes differ.

    ``skipped`` holds the reasons of the samples that could not be loaded; they are left out of the
    batch. A file fails the same way every time, so a resumed run skips exactly what the first run did.
    """
    skipped = [s for s in samples if isinstance(s, SkippedImage)]
    good = [s for s in samples if not isinstance(s, SkippedImage)]
    if not good:
        return [], [], None, [str(s) for s in skipped]
    images, targets, props = zip(*good)
    return list(images), list(targets), (None if props[0] is None else list(props)), [str(s) for s in skipped]


def epoch_order(seed: int, epoch: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(permutation (n,) int64, flip coins (n,) bool) of one epoch."""
    rng = np.random.default_rng([seed, epoch])
    return rng.permutation(n), rng.random(n) < 0.5


class BatchPlan(torch.utils.data.Sampler):
    """Yields, for iterations ``start..iterations-1``, this rank's list of ``(index, flip)`` pairs."""

    def __init__(self, n: int, batch_size: int, seed: int, start: int, iterations: int,
                 flip: bool = True, rank: int = 0, world_size: int = 1):
        if n == 0:
            raise ValueError("no training images")
        if batch_size % world_size:
            raise ValueError(f"train.batch_size {batch_size} is not divisible by {world_size} processes")
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.start, self.iterations, self.flip = start, iterations, flip
        self.rank, self.world_size = rank, world_size

    def __len__(self) -> int:
        return max(self.iterations - self.start, 0)

    def batch(self, it: int) -> list[tuple[int, bool, int]]:
        """The global batch of iteration ``it`` (all ranks): ``(index, flip, stream position)``."""
        out, cached = [], {}
        for pos in range(it * self.batch_size, (it + 1) * self.batch_size):
            epoch = pos // self.n
            if epoch not in cached:
                cached[epoch] = epoch_order(self.seed, epoch, self.n)
            order, coins = cached[epoch]
            k = pos % self.n
            out.append((int(order[k]), bool(coins[k]) and self.flip, pos))
        return out

    def __iter__(self):
        for it in range(self.start, self.iterations):
            yield self.batch(it)[self.rank :: self.world_size]
