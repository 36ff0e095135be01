"""Fixtures for the mAP calculator's tests: tiny VOC roots and random COCO corpora, made on the fly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pytest


def write_voc_root(root: Path, images: dict[str, list[tuple]], classes: list[str], split: str = "test") -> Path:
    """A VOC root with ``Annotations/<id>.xml`` and ``ImageSets/Main/<split>.txt``; no pixels.

    ``images``: id -> list of ``(class_name, xmin, ymin, xmax, ymax, difficult)`` (1-based inclusive).
    """
    (root / "Annotations").mkdir(parents=True, exist_ok=True)
    (root / "ImageSets" / "Main").mkdir(parents=True, exist_ok=True)
    (root / "classes.txt").write_text("\n".join(classes) + "\n")
    for image_id, objects in images.items():
        objs = "".join(
            f"<object><name>{c}</name><difficult>{int(d)}</difficult><bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin>"
            f"<xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>"
            for c, x1, y1, x2, y2, d in objects
        )
        (root / "Annotations" / f"{image_id}.xml").write_text(
            f"<annotation><filename>{image_id}.jpg</filename><size><width>500</width><height>400</height>"
            f"<depth>3</depth></size>{objs}</annotation>"
        )
    (root / "ImageSets" / "Main" / f"{split}.txt").write_text("".join(f"{i}\n" for i in images))
    return root


def random_coco(seed: int, num_images: int = 40, num_cats: int = 4, crowd_rate: float = 0.08,
                max_per_pair: int = 0) -> tuple[dict, list]:
    """A random COCO ground truth and results list meant to hit every pycocotools rule.

    Sizes span the small/medium/large edges (areas exactly 32**2 and 96**2 occur),
    ``area`` differs from the box area, crowds occur, coordinates are often whole
    numbers (exact IoU ties and IoUs exactly at a threshold), scores are rounded
    so ties occur, some images have no objects or no detections, and with
    ``max_per_pair`` some pairs get more than 100 detections.
    """
    rng = np.random.default_rng(seed)
    cat_ids = sorted(rng.choice(np.arange(1, 30), num_cats, replace=False).tolist())
    images = [{"id": int(i), "width": 640, "height": 480} for i in rng.choice(np.arange(1, 10_000), num_images, replace=False)]
    anns, results = [], []
    sides = np.array([4, 8, 16, 31, 32, 33, 50, 95, 96, 97, 150, 300])
    for im in images:
        n = int(rng.integers(0, 8)) if rng.random() > 0.15 else 0
        for _ in range(n):
            w, h = (int(rng.choice(sides)), int(rng.choice(sides))) if rng.random() < 0.7 else rng.uniform(2, 200, 2)
            x, y = (int(rng.integers(0, 300)), int(rng.integers(0, 300))) if rng.random() < 0.7 else rng.uniform(0, 300, 2)
            area = float(w * h) if rng.random() < 0.5 else float(w * h * rng.uniform(0.4, 1.0))
            anns.append({"id": len(anns) + 1, "image_id": im["id"], "category_id": int(rng.choice(cat_ids)),
                         "bbox": [float(x), float(y), float(w), float(h)], "area": area,
                         "iscrowd": int(rng.random() < crowd_rate)})
        own = [a for a in anns if a["image_id"] == im["id"]]
        for a in own:  # jittered copies, some duplicated, some with the wrong class
            for _ in range(int(rng.integers(0, 3))):
                x, y, w, h = a["bbox"]
                j = rng.integers(-6, 7, 4) if rng.random() < 0.6 else rng.normal(0, 4, 4)
                box = [x + j[0], y + j[1], max(1.0, w + j[2]), max(1.0, h + j[3])]
                cat = a["category_id"] if rng.random() < 0.85 else int(rng.choice(cat_ids))
                results.append({"image_id": im["id"], "category_id": cat, "bbox": [float(v) for v in box],
                                "score": float(np.round(rng.random(), 1))})
        for _ in range(int(rng.integers(0, 5))):  # background detections
            box = [float(v) for v in (*rng.integers(0, 400, 2), *rng.integers(2, 120, 2))]
            results.append({"image_id": im["id"], "category_id": int(rng.choice(cat_ids)), "bbox": box,
                            "score": float(np.round(rng.random(), 2))})
    if max_per_pair:
        im = images[0]["id"]
        for _ in range(max_per_pair):
            box = [float(v) for v in (*rng.integers(0, 300, 2), *rng.integers(20, 120, 2))]
            results.append({"image_id": im, "category_id": cat_ids[0], "bbox": box, "score": float(rng.random())})
    order = rng.permutation(len(results))
    results = [results[i] for i in order]
    gt = {"images": images, "annotations": anns,
          "categories": [{"id": c, "name": f"cat{c}"} for c in rng.permutation(cat_ids).tolist()]}
    return gt, results


@pytest.fixture
def coco_files(tmp_path):
    """Factory: ``coco_files(seed, **kw)`` writes a random corpus and returns (gt_path, results_path)."""

    def make(seed: int, **kw):
        gt, results = random_coco(seed, **kw)
        gt_path, res_path = tmp_path / f"gt{seed}.json", tmp_path / f"res{seed}.json"
        gt_path.write_bytes(orjson.dumps(gt))
        res_path.write_bytes(orjson.dumps(results))
        return gt_path, res_path

    return make


@pytest.fixture
def make_voc_root():
    """The ``write_voc_root`` helper as a fixture (tests cannot import conftest under importlib mode)."""
    return write_voc_root


@pytest.fixture
def make_coco():
    """The ``random_coco`` helper as a fixture."""
    return random_coco
