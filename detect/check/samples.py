"""The real training images the checks run on, loaded once: ``Samples``.

The first ``check.batches x train.batch_size`` usable images of the training
split (never flipped: the checks want no augmentation), with the precomputed
proposals the training engine would give them (``detect.proposal_route``; a
missing cache entry is computed for these images only). Also the split as a
small ``VOCDataset`` so the shared mAP calculator can score them.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import torch

from detect.data.training import SkippedImage, TrainingSet
from detect.data.voc import VOCDataset
from eval.errors import InputError


@dataclass
class Samples:
    """``images``/``targets``/``proposals`` are per image, in split order; ``voc`` holds the same images."""

    voc: VOCDataset
    images: list[torch.Tensor]  # (3, H, W) float in [0, 1]
    targets: list[dict[str, torch.Tensor]]  # boxes (N, 4) float, labels (N,) int64 in 1..C
    proposals: list[torch.Tensor] | None  # (P, 4) float per image, or None when the model makes its own
    batch_size: int

    @property
    def num_classes(self) -> int:
        return len(self.voc.class_names)

    def batch(self, k: int) -> tuple[list, list, list | None]:
        """Batch ``k`` (cycling): ``batch_size`` consecutive images."""
        n = len(self.images)
        idx = [(k * self.batch_size + j) % n for j in range(min(self.batch_size, n))]
        return self.pick(idx)

    def pick(self, idx: list[int]) -> tuple[list, list, list | None]:
        props = [self.proposals[i] for i in idx] if self.proposals is not None else None
        return [self.images[i] for i in idx], [self.targets[i] for i in idx], props

    def subset(self, n: int) -> "Samples":
        """The first ``n`` images (and a VOCDataset of just them)."""
        return self.subset_of(list(range(min(n, len(self.images)))))

    def subset_of(self, idx: list[int]) -> "Samples":
        """The images ``idx`` (and a VOCDataset of just them)."""
        voc = copy.copy(self.voc)
        voc.annotations = [self.voc.annotations[i] for i in idx]
        images, targets, props = self.pick(idx)
        return Samples(voc, images, targets, props, self.batch_size)


def load_samples(config, count: int, batch_size: int, max_objects: int | None = None) -> Samples:
    """The first ``count`` usable images of ``config.data.train_split`` (see the module docstring).

    ``max_objects``: only images with 1 to that many (non-difficult) objects, for a head that
    can find no more than that many per image (the regression rung: one).
    """
    from detect.proposal_route import split_proposals

    data = config.data
    voc = VOCDataset(data.root, data.train_split, class_names=config.classes, on_error="skip",
                     check_images=data.check_images, max_pixels=data.max_image_pixels)
    if len(voc) == 0:
        raise InputError(Path(data.root) / "ImageSets" / "Main" / f"{data.train_split}.txt",
                         "no usable training images")
    if max_objects is not None:
        voc.annotations = [a for a in voc.annotations if 1 <= int((~a.difficult).sum()) <= max_objects]
    voc.annotations = voc.annotations[:count]
    if not voc.annotations:
        raise InputError(Path(data.root), f"no training image with 1 to {max_objects} objects for the overfit check")
    found = split_proposals(config, voc)
    items = TrainingSet(voc, found.boxes if found is not None else None)
    images, targets, props, kept = [], [], [], []
    for i in range(len(voc)):
        sample = items[(i, False)]
        if isinstance(sample, SkippedImage):  # fails to decode: leave it out, as training does
            continue
        image, target, prop = sample
        images.append(image)
        targets.append(target)
        props.append(prop)
        kept.append(voc.annotations[i])
    voc.annotations = kept
    if not images:
        raise InputError(Path(data.root), "none of the first training images could be decoded")
    return Samples(voc, images, targets, props if found is not None else None, batch_size)
