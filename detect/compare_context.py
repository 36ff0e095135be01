"""What a comparison records besides its numbers: settings held equal, the machine, example images.

Used by :func:`detect.compare.compare` to fill metrics.json's ``settings``,
``machine`` and ``examples`` (see ``eval/report_schema.py``).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def held_equal(configs: dict, data_root: Path, split: str, protocol: str) -> dict:
    """The settings a reader needs to trust the comparison; a value that differs says so."""
    def value(cfg, getter):
        try:
            return getter(cfg)
        except AttributeError:
            return None

    keys = {
        "backbone": lambda c: f"{c.model.backbone.name} (width {c.model.backbone.width}, "
                              f"weights {c.model.backbone.weights or 'random init'})",
        "input size": lambda c: f"{c.data.image_size} px (max {c.data.max_size})",
        "seed": lambda c: c.seed,
        "schedule": lambda c: f"{c.train.optimizer} lr {c.train.lr:g}, batch {c.train.batch_size}, "
                              f"warm-up {c.train.warmup_iterations}, {c.train.schedule}",
        "training iterations": lambda c: c.train.iterations,
        "horizontal flips": lambda c: c.data.flip,
        "test score threshold": lambda c: c.test.score_thresh,
        "test NMS threshold": lambda c: c.test.nms_thresh,
    }
    settings: dict = {}
    for key, getter in keys.items():
        values = {name: value(cfg, getter) for name, cfg in configs.items()}
        distinct = set(map(str, values.values()))
        if len(distinct) <= 1:
            settings[key] = next(iter(values.values()), None)
        else:
            settings[key] = "differs: " + ", ".join(f"{n} {v}" for n, v in values.items())
    settings.update({"dataset": str(data_root), "split": split, "protocol": protocol,
                     "mAP calculator": "eval.mean_ap.evaluate (shared by every variant)"})
    return settings


def machine_info(device: str) -> dict:
    """CPU/GPU model, threads and library versions, for the report's machine table."""
    import platform

    import torch
    import torchvision

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(torch.device(device)) if device.startswith("cuda") else None
    return {"cpu": cpu, "cpu cores": os.cpu_count(), "torch threads": torch.get_num_threads(),
            "load average at start": load_average(),
            "device": device, "gpu": gpu, "torch": torch.__version__, "torchvision": torchvision.__version__,
            "python": platform.python_version(), "platform": platform.platform()}


def load_average() -> str | None:
    """The 1/5/15-minute load averages: other work on the machine inflates every time measured."""
    try:
        return " / ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return None


def write_examples(dataset, out_dir: Path, count: int) -> list[dict]:
    """Copy the first ``count`` images of the split beside metrics.json; their schema entries."""
    examples = []
    for k in range(min(count, len(dataset))):
        src = dataset.image_path(k)
        ann = dataset.annotations[k]
        suffix = src.suffix.lower() if src.suffix.lower() in (".jpg", ".jpeg", ".png") else ".png"
        rel = f"examples/example_{k}{suffix}"
        target = out_dir / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if suffix == ".png" and src.suffix.lower() != ".png":
            from PIL import Image

            Image.fromarray(dataset[k][0]).save(target)
        else:
            shutil.copyfile(src, target)
        image = dataset[k][0]
        examples.append({
            "image_id": ann.image_id, "file": rel, "width": int(image.shape[1]), "height": int(image.shape[0]),
            "ground_truth": [{"label": dataset.class_names[int(lab)], "box": [float(v) for v in box],
                              "difficult": bool(diff)}
                             for box, lab, diff in zip(ann.boxes, ann.labels, ann.difficult)],
        })
    return examples
