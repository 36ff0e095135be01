"""The embedded default dataset: synthetic shapes written in the PASCAL VOC layout.

``make_synthetic_voc(out)`` writes real JPEG files, VOC XML and
``ImageSets/Main/{train,test,trainval}.txt`` (plus ``classes.txt``), so the demo
and the tests exercise the same reader that serves real VOC.

What makes it a detection problem rather than a colour lookup:

* four shape classes whose colour is drawn independently of the class;
* 1-6 objects per image, sides from about 8% to 60% of the image side;
* objects drawn in random order, so later ones partially occlude earlier ones;
  boxes are the *visible* extent, as the VOC annotation guidelines ask;
* textured, noisy backgrounds (smooth colour fields, stripes, blobs, sensor noise);
* tiny objects and mostly hidden ones are marked ``difficult``.

Each image has its own random generator seeded by ``(seed, image index)``, so
the same seed gives byte-identical files whatever the order of generation.

A user's folder is never written into: the target must be missing, empty, or
a synth dataset of the same parameters (recorded in ``synth.json``), unless the
caller asks to replace it whole.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from eval.errors import InputError
from eval.files import atomic_write_json, atomic_write_text
from eval.voc_annotations import CLASSES_FILE

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star")

#: The file in a synth dataset's root that records its parameters (see ``synth_params``).
SYNTH_STAMP = "synth.json"
#: Raise when a change to the generator changes the files that equal parameters write.
SYNTH_FORMAT = 1

#: An object whose visible area is below this fraction of its full area is difficult.
DIFFICULT_VISIBLE = 0.4
#: An object whose visible box side (sqrt of area) is below this fraction of the image side is difficult.
DIFFICULT_SIDE = 0.1
#: Objects less visible than this are left out of the annotation entirely.
MIN_VISIBLE = 0.08


@dataclass
class SynthObject:
    label: str
    box: tuple[int, int, int, int]  # visible extent, [x1, y1, x2, y2], x2/y2 exclusive
    difficult: bool


def _shape_polygon(shape: str, cx: float, cy: float, side: float, angle: float) -> np.ndarray | None:
    """Vertices of a polygonal shape (None for the circle), int32 (K, 2)."""
    r = side / 2.0
    if shape == "square":
        t = angle + np.pi / 4 + np.arange(4) * np.pi / 2
        rad = np.full(4, r * np.sqrt(2.0))
    elif shape == "triangle":
        t = angle - np.pi / 2 + np.arange(3) * 2 * np.pi / 3
        rad = np.full(3, r * 1.15)
    elif shape == "star":
        t = angle - np.pi / 2 + np.arange(10) * np.pi / 5
        rad = np.where(np.arange(10) % 2 == 0, r * 1.05, r * 0.45)
    else:
        return None
    pts = np.stack([cx + rad * np.cos(t), cy + rad * np.sin(t)], axis=1)
    return np.round(pts).astype(np.int32)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A textured, noisy background: smooth colour field + stripes or blobs, uint8 (S, S, 3)."""
    coarse = rng.uniform(40, 215, size=(4, 4, 3)).astype(np.float32)
    field = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
    kind = rng.integers(3)
    if kind == 0:  # stripes at a random angle and period
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
        theta = rng.uniform(0, np.pi)
        period = rng.uniform(6, 20)
        wave = np.sin((xx * np.cos(theta) + yy * np.sin(theta)) * (2 * np.pi / period))
        field += (wave * rng.uniform(8, 25))[..., None]
    elif kind == 1:  # soft blobs
        for _ in range(int(rng.integers(3, 8))):
            c = tuple(int(v) for v in rng.integers(0, size, 2))
            rad = int(rng.integers(size // 16, size // 5))
            col = tuple(float(v) for v in rng.uniform(-40, 40, 3))
            blob = np.zeros_like(field)
            cv2.circle(blob, c, rad, col, -1)
            field += cv2.GaussianBlur(blob, (0, 0), rad / 2)
    fine = rng.normal(0, rng.uniform(6, 16), size=(size // 2, size // 2, 1)).astype(np.float32)
    field += cv2.resize(fine, (size, size), interpolation=cv2.INTER_LINEAR)[..., None]
    return field


def _colour(rng: np.random.Generator) -> tuple[float, float, float]:
    """A saturated random RGB colour, independent of the shape's class."""
    hsv = np.array([[[rng.integers(0, 180), rng.integers(120, 256), rng.integers(120, 256)]]], np.uint8)
    return tuple(float(v) for v in cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0])


def render_image(rng: np.random.Generator, size: int) -> tuple[np.ndarray, list[SynthObject]]:
    """One synthetic image (uint8 RGB, S x S) and its visible-extent annotations."""
    image = _background(rng, size)
    owner = np.zeros((size, size), np.uint8)  # which object (1-based) owns each pixel
    full_area = []
    n = int(rng.integers(1, 7))
    labels = []
    # Sides log-uniform between 8% and 60% of the image side: as many small as large objects.
    sides = np.exp(rng.uniform(np.log(0.08 * size), np.log(0.6 * size), n))
    for k in range(n):
        shape = SHAPES[int(rng.integers(len(SHAPES)))]
        side = float(sides[k])
        cx, cy = rng.uniform(side / 2, size - side / 2, 2)
        angle = rng.uniform(-0.35, 0.35)
        mask = np.zeros((size, size), np.uint8)
        poly = _shape_polygon(shape, cx, cy, side, angle)
        if poly is None:
            cv2.circle(mask, (int(round(cx)), int(round(cy))), int(round(side / 2)), 1, -1)
        else:
            cv2.fillPoly(mask, [poly], 1)
        inside = mask.astype(bool)
        # Shade the object: a linear gradient across it, so it is not one flat colour.
        colour = np.array(_colour(rng), np.float32)
        gx, gy = rng.uniform(-0.6, 0.6, 2) * 40 / max(side, 1.0)
        yy, xx = np.nonzero(inside)
        shade = (xx - cx) * gx + (yy - cy) * gy
        image[yy, xx] = colour + shade[:, None]
        owner[inside] = k + 1
        full_area.append(int(inside.sum()))
        labels.append(shape)
    image += rng.normal(0, rng.uniform(3, 9), size=(size, size, 1)).astype(np.float32)
    image = np.clip(image, 0, 255).astype(np.uint8)

    objects = []
    for k in range(n):
        visible = owner == k + 1
        area = int(visible.sum())
        if full_area[k] == 0 or area < MIN_VISIBLE * full_area[k] or area < 4:
            continue
        rows = np.flatnonzero(visible.any(axis=1))
        cols = np.flatnonzero(visible.any(axis=0))
        box = (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)
        side = np.sqrt((box[2] - box[0]) * (box[3] - box[1]))
        hidden = area < DIFFICULT_VISIBLE * full_area[k]
        tiny = side < DIFFICULT_SIDE * size
        objects.append(SynthObject(labels[k], box, bool(hidden or tiny)))
    return image, objects


def annotation_xml(image_id: str, size: int, objects: list[SynthObject]) -> str:
    """VOC XML for one image; boxes written 1-based inclusive (xmin = x1 + 1, xmax = x2)."""
    parts = [
        "<annotation>",
        "\t<folder>detladder-synth</folder>",
        f"\t<filename>{image_id}.jpg</filename>",
        "\t<source><database>detladder synthetic shapes</database></source>",
        f"\t<size><width>{size}</width><height>{size}</height><depth>3</depth></size>",
        "\t<segmented>0</segmented>",
    ]
    for obj in objects:
        x1, y1, x2, y2 = obj.box
        parts += [
            "\t<object>",
            f"\t\t<name>{obj.label}</name>",
            "\t\t<pose>Unspecified</pose>",
            "\t\t<truncated>0</truncated>",
            f"\t\t<difficult>{int(obj.difficult)}</difficult>",
            f"\t\t<bndbox><xmin>{x1 + 1}</xmin><ymin>{y1 + 1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox>",
            "\t</object>",
        ]
    parts.append("</annotation>")
    return "\n".join(parts) + "\n"


def _write_one(root: Path, image_id: str, seed: int, index: int, size: int, quality: int) -> None:
    rng = np.random.default_rng([seed, index])
    image, objects = render_image(rng, size)
    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError(f"JPEG encoding failed for {image_id}")
    (root / "JPEGImages" / f"{image_id}.jpg").write_bytes(jpeg.tobytes())
    (root / "Annotations" / f"{image_id}.xml").write_text(annotation_xml(image_id, size, objects), encoding="utf-8")


def synth_params(train: int, test: int, seed: int, image_size: int, quality: int = 90) -> dict:
    """What ``SYNTH_STAMP`` records: equal parameters write byte-identical files (``format`` counts generator changes)."""
    return {"generator": "detladder synth", "format": SYNTH_FORMAT, "train": train, "test": test, "seed": seed,
            "image_size": image_size, "quality": quality}


def read_synth_params(root: str | os.PathLike) -> dict | None:
    """The parameters a complete synth dataset at ``root`` was made with; None for anything else."""
    try:
        params = json.loads((Path(root) / SYNTH_STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return params if isinstance(params, dict) and params.get("generator") == "detladder synth" else None


def _write_tree(root: Path, params: dict, progress) -> None:
    """Every file of the dataset into the empty folder ``root``; the stamp last, so it marks a complete tree."""
    train, test = params["train"], params["test"]
    for sub in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    ids = [f"{i:06d}" for i in range(train + test)]
    for i, image_id in enumerate(ids):
        _write_one(root, image_id, params["seed"], i, params["image_size"], params["quality"])
        if progress is not None:
            progress(i + 1)
    atomic_write_text(root / CLASSES_FILE, "\n".join(SHAPES) + "\n")
    train_ids, test_ids = ids[:train], ids[train:]
    for split, members in (("train", train_ids), ("trainval", train_ids), ("test", test_ids)):
        atomic_write_text(root / "ImageSets" / "Main" / f"{split}.txt", "".join(f"{i}\n" for i in members))
    atomic_write_json(root / SYNTH_STAMP, params)


def _move_in(new: Path, root: Path) -> None:
    """Put the finished tree ``new`` at ``root`` by renames: never a folder with old and new files mixed.

    A missing ``root`` is one rename. An empty one may be the working folder,
    which cannot be renamed over, so the entries move in one by one, the stamp
    last. A full one (replaced on request) is renamed aside, ``new`` renamed in,
    and only then the old tree deleted.
    """
    if not root.exists():
        os.rename(new, root)
    elif not any(root.iterdir()):
        for entry in sorted(new.iterdir(), key=lambda p: p.name == SYNTH_STAMP):
            os.rename(entry, root / entry.name)
    else:
        old = new.with_name(new.name + ".old")
        os.rename(root, old)
        os.rename(new, root)
        shutil.rmtree(old, ignore_errors=True)


def make_synthetic_voc(
    out: str | os.PathLike,
    train: int = 500,
    test: int = 100,
    seed: int = 0,
    image_size: int = 128,
    quality: int = 90,
    progress=None,
    force: bool = False,
) -> Path:
    """Write a synthetic VOC-layout dataset into ``out`` and return its root.

    Image ids are zero-padded indices: the train split first, then the test
    split. ``progress``, if given, is called with the number of images written
    so far. The parameters are recorded in ``out/synth.json``.

    ``out`` may be missing or empty. If it already holds a synth dataset made
    with the same parameters, nothing is written (the files would be the same
    bytes). Anything else is refused with ``InputError`` unless ``force``, and
    then replaced whole. The tree is built in a temporary sibling folder and
    renamed into place, so an interrupted run leaves ``out`` as it was.
    """
    if train < 0 or test < 0 or train + test == 0:
        raise ValueError("need at least one image (train + test > 0)")
    if image_size < 32:
        raise ValueError(f"image_size must be at least 32 pixels, got {image_size}")
    root = Path(out)
    full = root.resolve()
    params = synth_params(train, test, seed, image_size, quality)
    if full.exists() and not full.is_dir():
        raise InputError(root, "exists and is not a folder")
    if full.is_dir():
        found = read_synth_params(full)
        if found == params:
            return root
        if any(full.iterdir()) and not force:
            what = ("holds a synth dataset made with other parameters (" + _describe(found) + ")" if found
                    else "is not empty and is not a synth dataset")
            raise InputError(root, f"{what}; use --force to replace the whole folder, or choose another --out")
        cwd = Path.cwd().resolve()
        if any(full.iterdir()) and (cwd == full or full in cwd.parents):  # it is about to be renamed away
            raise InputError(root, "is (or holds) the working folder; run from elsewhere to replace it")
    full.parent.mkdir(parents=True, exist_ok=True)
    new = full.parent / f".{full.name}.synth-{os.getpid()}-{secrets.token_hex(4)}"
    new.mkdir()  # not tempfile.mkdtemp: its mode 0700 would become the dataset's
    try:
        _write_tree(new, params, progress)
        _move_in(new, full)
    finally:
        shutil.rmtree(new, ignore_errors=True)  # gone already unless something failed
    return root


def _describe(params: dict) -> str:
    return ", ".join(f"{k}={params.get(k)}" for k in ("train", "test", "seed", "image_size"))
