"""A PASCAL VOC dataset as users have it on disk: ``Annotations/``, ``JPEGImages/``, ``ImageSets/Main/``.

``VOCDataset(root, split)`` reads every annotation of the split up front (the
XML goes through :mod:`eval.voc_annotations`, the project's one VOC reader)
and loads pixels on demand as HxWx3 uint8 RGB arrays.

Bad entries: with ``on_error="skip"`` (what training uses) a bad XML file, an
unknown class, a bad box or (with ``check_images``) a missing, unreadable or
over-size image drops that image and is recorded in ``dataset.problems``; with
``on_error="raise"`` the first one raises :class:`~eval.errors.InputError`.
``check_images="header"`` reads only each file's header (format, size, EXIF
orientation: cheap, and it catches missing files, non-images, decompression
bombs and a size that disagrees with the XML); ``"decode"`` (or ``True``)
decodes every image too, which also catches truncated files.

Pixels come from :func:`proposals.images.load_image`, the loader every path uses.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import numpy as np

from eval.errors import InputError
from eval.voc_annotations import (
    Problem,
    VOCAnnotation,
    parse_annotation,
    read_class_names,
    read_split,
)
from proposals.images import DEFAULT_MAX_PIXELS, IMAGE_SUFFIXES, load_image, probe_image

__all__ = ["VOCDataset", "load_image", "IMAGE_SUFFIXES"]


class VOCDataset:
    """The images and annotations of one split of a VOC-layout root.

    Attributes:
        root: the VOC root (the folder holding ``Annotations/``).
        split: the ``ImageSets/Main/<split>.txt`` name.
        class_names: the dataset's classes (``classes.txt`` or the 20 VOC classes).
        annotations: one :class:`VOCAnnotation` per usable image, in split order.
        problems: one :class:`Problem` per skipped image (``on_error="skip"``).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str,
        class_names: tuple[str, ...] | list[str] | None = None,
        on_error: str = "skip",
        check_images: bool | str = False,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ):
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', not {on_error!r}")
        mode = {False: None, None: None, "none": None, True: "decode", "decode": "decode", "header": "header"}
        if check_images not in mode:
            raise ValueError(f"check_images must be False, 'header' or 'decode', not {check_images!r}")
        self.check_images = mode[check_images]
        self.max_pixels = max_pixels
        self.root = Path(root)
        self.split = split
        if not self.root.is_dir():
            raise InputError(self.root, "dataset root not found")
        self.class_names = tuple(class_names) if class_names is not None else read_class_names(self.root)
        self.annotations: list[VOCAnnotation] = []
        self.problems: list[Problem] = []
        for image_id in read_split(self.root, split):
            try:
                ann = parse_annotation(self.root / "Annotations" / f"{image_id}.xml", self.class_names, image_id)
                if self.check_images:
                    self._check_image(ann)
            except InputError as exc:
                if on_error == "raise":
                    raise
                self.problems.append(Problem(str(exc.path), exc.detail))
                continue
            self.annotations.append(ann)

    def __len__(self) -> int:
        return len(self.annotations)

    def __getitem__(self, index: int) -> tuple[np.ndarray, VOCAnnotation]:
        ann = self.annotations[index]
        return load_image(self.image_path(index), self.max_pixels), ann

    @property
    def image_ids(self) -> list[str]:
        return [a.image_id for a in self.annotations]

    def image_path(self, index: int) -> Path:
        """Path of an image: ``JPEGImages/<filename>`` from the XML, else ``<id>.jpg``."""
        ann = self.annotations[index]
        return self._path_for(ann)

    def _path_for(self, ann: VOCAnnotation) -> Path:
        images = self.root / "JPEGImages"
        candidate = images / ann.filename
        if candidate.is_file():
            return candidate
        for suffix in IMAGE_SUFFIXES:
            alt = images / f"{ann.image_id}{suffix}"
            if alt.is_file():
                return alt
        return candidate

    def _check_image(self, ann: VOCAnnotation) -> None:
        path = self._path_for(ann)
        if self.check_images == "decode":
            h, w = load_image(path, self.max_pixels).shape[:2]
        else:
            w, h = probe_image(path, self.max_pixels)
        if ann.width is not None and (ann.width, ann.height) != (w, h):
            raise InputError(
                path,
                f"image is {w}x{h} but its annotation says {ann.width}x{ann.height}",
            )
        if ann.width is None:
            ann.width, ann.height = w, h
            bad = (ann.boxes[:, 2] > w) | (ann.boxes[:, 3] > h)
            if bad.any():
                k = int(np.flatnonzero(bad)[0]) + 1
                raise InputError(self.root / "Annotations" / f"{ann.image_id}.xml", f"object {k}: box lies outside the {w}x{h} image")

    def summary(self) -> dict:
        """Counts for ``data info``: images, objects and difficult objects per class, box sizes."""
        objects: Counter = Counter()
        difficult: Counter = Counter()
        sides = []
        per_image = []
        for ann in self.annotations:
            per_image.append(len(ann.labels))
            for label, diff in zip(ann.labels.tolist(), ann.difficult.tolist()):
                objects[self.class_names[label]] += 1
                difficult[self.class_names[label]] += int(diff)
            if len(ann.boxes):
                wh = ann.boxes[:, 2:] - ann.boxes[:, :2]
                sides.append(np.sqrt(wh[:, 0] * wh[:, 1]))
        sides_all = np.concatenate(sides) if sides else np.zeros(0)
        size = {}
        if len(sides_all):
            q = np.percentile(sides_all, [0, 25, 50, 75, 100])
            size = dict(zip(("min", "p25", "median", "p75", "max"), (round(float(v), 1) for v in q)))
        return {
            "root": str(self.root),
            "split": self.split,
            "images": len(self.annotations),
            "skipped_images": len(self.problems),
            "classes": list(self.class_names),
            "objects": {name: objects[name] for name in self.class_names},
            "difficult": {name: difficult[name] for name in self.class_names},
            "objects_per_image": {
                "min": int(min(per_image)) if per_image else 0,
                "mean": round(float(np.mean(per_image)), 2) if per_image else 0.0,
                "max": int(max(per_image)) if per_image else 0,
            },
            "box_side_px": size,  # sqrt(area) of the boxes, in pixels
            "problems": [str(p) for p in self.problems],
        }
