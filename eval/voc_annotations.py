"""PASCAL VOC annotation files: the XML, the split lists and the class list.

This is the one reader of VOC XML in the project: the mAP calculator reads
ground truth with it (no pixels needed) and ``detect.data`` builds its image
dataset on top of it. Boxes come out in the in-memory convention of README.md (Datasets):
float ``[x1, y1, x2, y2]``, 0-based, x2/y2 exclusive, i.e. ``x1 = xmin - 1``,
``x2 = xmax`` (with that conversion plain IoU equals the devkit's ``+1`` IoU).

XML is parsed with defusedxml, which refuses DTDs, entity expansion (billion
laughs) and external entities before anything is expanded.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import defusedxml.ElementTree as SafeET
import numpy as np
from defusedxml import DefusedXmlException

from eval.errors import InputError

VOC_CLASSES: tuple[str, ...] = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
    "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person",
    "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)

#: A dataset declares its own classes in this file at its root, one per line.
CLASSES_FILE = "classes.txt"


@dataclass
class VOCAnnotation:
    """One image's ground truth. ``labels`` index into the dataset's class list (no background)."""

    image_id: str
    filename: str
    width: int | None
    height: int | None
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float64))  # (G, 4) float64
    labels: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int64))  # (G,) int64
    difficult: np.ndarray = field(default_factory=lambda: np.zeros((0,), bool))  # (G,) bool


@dataclass
class Problem:
    """Something wrong with one file of a dataset. ``fatal`` problems make the entry unusable."""

    file: str
    message: str
    fatal: bool = True

    def __str__(self) -> str:
        return f"{self.file}: {self.message}"


def read_class_names(root: str | os.PathLike) -> tuple[str, ...]:
    """The dataset's class list: ``ROOT/classes.txt`` when present, else the 20 VOC classes."""
    path = Path(root) / CLASSES_FILE
    if not path.is_file():
        return VOC_CLASSES
    try:
        names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, f"cannot read class list ({exc.__class__.__name__})") from None
    names = [n for n in names if n and not n.startswith("#")]
    if not names:
        raise InputError(path, "class list is empty")
    if len(set(names)) != len(names):
        raise InputError(path, "class list names a class twice")
    if "__background__" in names or "background" in names:
        raise InputError(path, "'background' is implicit; do not list it as a class")
    return tuple(names)


def read_split(root: str | os.PathLike, split: str) -> list[str]:
    """Image ids listed in ``ROOT/ImageSets/Main/<split>.txt``, in file order."""
    path = Path(root) / "ImageSets" / "Main" / f"{split}.txt"
    if not path.is_file():
        raise InputError(path, f"split file not found (is {root} a VOC root with split '{split}'?)")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, f"cannot read split file ({exc.__class__.__name__})") from None
    ids = []
    for line in text.splitlines():
        parts = line.split()
        if parts:
            ids.append(parts[0])  # VOC's per-class lists carry a second column; the id is first
    return ids


def _number(node, tag: str, xml_path: Path, where: str) -> float:
    child = node.find(tag)
    if child is None or child.text is None or not child.text.strip():
        raise InputError(xml_path, f"{where}: missing <{tag}>")
    try:
        value = float(child.text.strip())
    except ValueError:
        raise InputError(xml_path, f"{where}: <{tag}> is not a number: {child.text.strip()!r}") from None
    if not math.isfinite(value):
        raise InputError(xml_path, f"{where}: <{tag}> is not finite")
    return value


def parse_annotation(
    xml_path: str | os.PathLike,
    class_names: tuple[str, ...] | list[str] = VOC_CLASSES,
    image_id: str | None = None,
) -> VOCAnnotation:
    """Read one VOC XML file; raise ``InputError`` naming the file (and object) on anything wrong.

    Tolerates the real files' extra fields (pose, truncated, part, segmented,
    source, ...) and float coordinates; a missing ``<difficult>`` means 0.
    """
    xml_path = Path(xml_path)
    image_id = image_id if image_id is not None else xml_path.stem
    try:
        root = SafeET.parse(xml_path).getroot()
    except FileNotFoundError:
        raise InputError(xml_path, "annotation file not found") from None
    except DefusedXmlException as exc:
        raise InputError(xml_path, f"refused unsafe XML ({exc.__class__.__name__}: DTDs and entities are not allowed)") from None
    except SafeET.ParseError as exc:
        raise InputError(xml_path, f"malformed XML ({exc})") from None
    except OSError as exc:
        raise InputError(xml_path, f"cannot read ({exc.__class__.__name__})") from None
    if root.tag != "annotation":
        raise InputError(xml_path, f"root element is <{root.tag}>, expected <annotation>")

    filename = (root.findtext("filename") or "").strip() or f"{image_id}.jpg"
    width = height = None
    size = root.find("size")
    if size is not None and size.find("width") is not None and size.find("height") is not None:
        width = _number(size, "width", xml_path, "<size>")
        height = _number(size, "height", xml_path, "<size>")
        if width < 1 or height < 1 or width != int(width) or height != int(height):
            raise InputError(xml_path, f"<size> is not a positive whole number of pixels: {width:g}x{height:g}")
        width, height = int(width), int(height)

    index = {name: i for i, name in enumerate(class_names)}
    boxes, labels, difficult = [], [], []
    for k, obj in enumerate(root.findall("object"), start=1):
        name = (obj.findtext("name") or "").strip()
        where = f"object {k} ({name or 'no name'})"
        if name not in index:
            known = ", ".join(class_names[:6]) + (", ..." if len(class_names) > 6 else "")
            raise InputError(xml_path, f"{where}: unknown class name {name!r} (classes: {known})")
        bnd = obj.find("bndbox")
        if bnd is None:
            raise InputError(xml_path, f"{where}: missing <bndbox>")
        xmin, ymin, xmax, ymax = (_number(bnd, t, xml_path, where) for t in ("xmin", "ymin", "xmax", "ymax"))
        # VOC is 1-based inclusive: xmin == xmax is a valid one-pixel box; xmax == xmin - 1 is a
        # box of zero width, and anything smaller is inverted.
        coords = f"({xmin:g},{ymin:g},{xmax:g},{ymax:g})"
        if xmax < xmin or ymax < ymin:
            zero = xmax == xmin - 1 or ymax == ymin - 1
            kind = "zero-area box" if zero else "inverted box (xmax < xmin or ymax < ymin)"
            raise InputError(xml_path, f"{where}: {kind} {coords}")
        x1, y1, x2, y2 = xmin - 1.0, ymin - 1.0, xmax, ymax
        # One pixel of slack: a few real VOC2012 files say xmin = 0 (one past the 1-based edge).
        if x1 < -1 or y1 < -1 or (width is not None and x2 > width + 1) or (height is not None and y2 > height + 1):
            raise InputError(
                xml_path,
                f"{where}: box {coords} lies outside the {width}x{height} image",
            )
        flag = (obj.findtext("difficult") or "0").strip()
        if flag not in ("0", "1"):
            raise InputError(xml_path, f"{where}: <difficult> must be 0 or 1, got {flag!r}")
        boxes.append((x1, y1, x2, y2))
        labels.append(index[name])
        difficult.append(flag == "1")
    return VOCAnnotation(
        image_id=image_id,
        filename=filename,
        width=width,
        height=height,
        boxes=np.asarray(boxes, np.float64).reshape(-1, 4),
        labels=np.asarray(labels, np.int64),
        difficult=np.asarray(difficult, bool),
    )


def read_voc_annotations(
    root: str | os.PathLike,
    split: str,
    class_names: tuple[str, ...] | list[str] | None = None,
    on_error: str = "raise",
) -> tuple[list[VOCAnnotation], list[Problem]]:
    """Annotations of every image in a split, in split order.

    ``on_error="raise"`` stops at the first bad file with an ``InputError``;
    ``"skip"`` leaves bad images out and returns one ``Problem`` per skipped file.
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', not {on_error!r}")
    root = Path(root)
    names = tuple(class_names) if class_names is not None else read_class_names(root)
    annotations, problems = [], []
    for image_id in read_split(root, split):
        xml_path = root / "Annotations" / f"{image_id}.xml"
        try:
            annotations.append(parse_annotation(xml_path, names, image_id=image_id))
        except InputError as exc:
            if on_error == "raise":
                raise
            problems.append(Problem(str(exc.path), exc.detail))
    return annotations, problems
