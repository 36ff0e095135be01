"""What a comparison records besides its numbers: settings held equal, the machine, example images.

Used by :func:`detect.compare.compare` to fill metrics.json's ``settings``,
``machine`` and ``examples`` (see ``eval/report_schema.py``).
"""

from __future__ import annotations

import io
import os
from pathlib import Path

from eval.files import atomic_write_bytes


def held_equal(configs: dict, data_root: Path, split: str, protocol: str, device: str = "cpu") -> dict:
    """The settings a reader needs to trust the comparison; a value that differs says so."""
    import torch

    from detect.engine.precision import training_precision

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
        "training precision": lambda c: training_precision(c.train, torch.device(device)).name
                                        + (", NHWC" if c.train.channels_last and torch.device(device).type == "cpu" else ""),
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
    """Copy the first ``count`` images of the split beside metrics.json; their schema entries.

    Each image is decoded first, so a missing or broken one is an ``InputError`` naming it
    (exit 2 before any training) rather than an error from the copy.
    """
    examples = []
    for k in range(min(count, len(dataset))):
        src = dataset.image_path(k)
        ann = dataset.annotations[k]
        image = dataset[k][0]  # InputError naming the file if it is missing or unreadable
        suffix = src.suffix.lower() if src.suffix.lower() in (".jpg", ".jpeg", ".png") else ".png"
        rel = f"examples/example_{k}{suffix}"
        if suffix == ".png" and src.suffix.lower() != ".png":
            from PIL import Image

            encoded = io.BytesIO()
            Image.fromarray(image).save(encoded, format="PNG")
            atomic_write_bytes(out_dir / rel, encoded.getvalue())
        else:
            atomic_write_bytes(out_dir / rel, src.read_bytes())
        examples.append({
            "image_id": ann.image_id, "file": rel, "width": int(image.shape[1]), "height": int(image.shape[0]),
            "ground_truth": [{"label": dataset.class_names[int(lab)], "box": [float(v) for v in box],
                              "difficult": bool(diff)}
                             for box, lab, diff in zip(ann.boxes, ann.labels, ann.difficult)],
        })
    return examples
