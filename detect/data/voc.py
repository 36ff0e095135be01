"""A PASCAL VOC dataset as users have it on disk: ``Annotations/``, ``JPEGImages/``, ``ImageSets/Main/``.

``VOCDataset(root, split)`` reads every annotation of the split up front (the
XML goes through :mod:`eval.voc_annotations`, the project's one VOC reader)
and loads pixels on demand as HxWx3 uint8 RGB arrays.

Bad entries: with ``on_error="skip"`` (what training uses) a bad XML file, an
unknown class, a bad box or (with ``check_images=True``) a missing or corrupt
image drops that image and is recorded in ``dataset.problems``; with
``on_error="raise"`` the first one raises :class:`~eval.errors.InputError`.
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

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def load_image(path: str | os.PathLike) -> np.ndarray:
    """Decode an image file into an HxWx3 uint8 RGB array; ``InputError`` if missing or corrupt.

    Pillow is used rather than OpenCV because it raises on truncated files
    instead of printing a warning and returning half a picture.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as img:
            img.load()
            if img.mode != "RGB":
                img = img.convert("RGB")
            array = np.asarray(img, dtype=np.uint8)
    except FileNotFoundError:
        raise InputError(path, "image file not found") from None
    except UnidentifiedImageError:
        raise InputError(path, "not an image file (cannot identify its format)") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise InputError(path, f"corrupt image ({exc})") from None
    if array.ndim != 3 or array.shape[0] < 1 or array.shape[1] < 1:
        raise InputError(path, f"unexpected image shape {array.shape}")
    return array


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
        check_images: bool = False,
    ):
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', not {on_error!r}")
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
                if check_images:
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
        return load_image(self.image_path(index)), ann

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
        image = load_image(self._path_for(ann))
        h, w = image.shape[:2]
        if ann.width is not None and (ann.width, ann.height) != (w, h):
            raise InputError(
                self._path_for(ann),
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
