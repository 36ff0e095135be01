"""Writes the hand-made metrics.json fixture of the report tests (run once; output committed).

Five variants on four classes, plausible numbers, four 128 px example images
with drawn shapes. Usage: python tests/data/report/make_fixture.py
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
CLASSES = ["circle", "square", "triangle", "star"]
VARIANTS = [  # name, rung, proposal source, region classifier, mAP level, proposals s, network s, params
    ("regression", "regression", "none (whole image)", "global-pool head", 0.31, 0.0, 0.004, 310_000),
    ("sliding_window", "sliding_window", "sliding windows", "crop-and-warp + backbone", 0.55, 0.0004, 0.41, 320_000),
    ("rcnn", "rcnn", "Selective Search", "crop-and-warp + backbone", 0.78, 0.052, 0.48, 320_000),
    ("fast_rcnn", "fast_rcnn", "Selective Search", "RoIAlign on shared features", 0.83, 0.052, 0.031, 480_000),
    ("faster_rcnn", "faster_rcnn", "RPN", "RoIAlign on shared features", 0.93, 0.006, 0.018, 520_000),
]


def curve(level: float, rng) -> dict:
    recall = np.linspace(0, level + 0.05, 60)
    precision = np.clip(1.0 - (recall / (level + 0.06)) ** 6 + rng.normal(0, 0.01, recall.size), 0, 1)
    return {"recall": [round(float(r), 4) for r in recall], "precision": [round(float(p), 4) for p in precision]}


def image(seed: int) -> tuple[np.ndarray, list[dict]]:
    rng = np.random.default_rng(seed)
    img = (rng.random((128, 128, 3)) * 60 + 90).astype(np.uint8)
    gts = []
    for k in range(2):
        x1, y1 = int(rng.integers(5, 70)), int(rng.integers(5, 70))
        s = int(rng.integers(20, 50))
        img[y1:y1 + s, x1:x1 + s] = rng.integers(0, 255, 3)
        gts.append({"label": CLASSES[(seed + k) % 4], "box": [x1, y1, x1 + s, y1 + s]})
    return img, gts


def main() -> None:
    rng = np.random.default_rng(0)
    examples = []
    (HERE / "examples").mkdir(exist_ok=True)
    for i in range(4):
        img, gts = image(i)
        Image.fromarray(img).save(HERE / "examples" / f"{i:06d}.png")
        examples.append({"image_id": f"{i:06d}", "file": f"examples/{i:06d}.png",
                         "width": 128, "height": 128, "ground_truth": gts})
    variants = []
    for name, rung, source, head, level, t_prop, t_net, params in VARIANTS:
        per_class = {c: round(float(np.clip(level + rng.normal(0, 0.05), 0, 1)), 4) for c in CLASSES}
        dets = {}
        for ex in examples:
            boxes = ex["ground_truth"][:1] if rung == "regression" else ex["ground_truth"]
            dets[ex["image_id"]] = [{"label": g["label"], "score": round(float(rng.uniform(0.5, 1)), 3),
                                     "box": [b + float(rng.normal(0, 2)) for b in g["box"]]} for g in boxes]
        variants.append({
            "name": name, "config": f"configs/ladder/{name}.yaml", "status": "ok", "error": None,
            "rung": rung, "proposal_source": source, "region_classifier": head,
            "mAP": round(float(np.mean(list(per_class.values()))), 4), "per_class": per_class,
            "seconds_per_image": {"proposals": t_prop, "network": t_net, "total": t_prop + t_net},
            "params": params, "train_seconds": 30.0 + 20 * len(variants),
            "curves": {"pooled": curve(level, rng), "per_class": {c: curve(per_class[c], rng) for c in CLASSES}},
            "examples": dets,
        })
    metrics = {
        "schema_version": 1, "protocol": "voc12", "created": "2026-01-01T00:00:00Z",
        "dataset": {"root": "runs/demo/data", "split": "test", "num_images": 100, "class_names": CLASSES},
        "settings": {"backbone": "tiny (width 32)", "input size": 128, "seed": 0,
                     "schedule": "adamw, warm-up 50, cosine", "dataset": "runs/demo/data",
                     "split": "test", "protocol": "voc12"},
        "machine": {"cpu": "fixture CPU", "gpu": None, "threads": 2, "torch": "2.14.1"},
        "timing": {"images": 20, "warmup": 2},
        "examples": examples, "variants": variants,
    }
    (HERE / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")


if __name__ == "__main__":
    main()
