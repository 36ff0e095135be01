"""``detladder detect`` as a library call: image files and folders in, annotated images and JSON out.

``detect_files`` finds the images (folders recursively: jpg, jpeg, png, bmp,
webp), runs the detector in batches, writes one annotated copy of each image
under ``out_dir`` (same relative path; boxes, class and score drawn with
OpenCV) and ``out_dir/detections.json``::

    {"images": [{"file", "width", "height",
                 "detections": [{"label", "score", "box": [x1, y1, x2, y2]}]}]}

An unreadable image is reported through ``say`` and skipped; the others still
run, and the result lists the failures (the CLI then exits 1).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from detect.data.voc import IMAGE_SUFFIXES, load_image
from eval.errors import InputError
from eval.files import atomic_write_bytes, atomic_write_json


@dataclass
class DetectFilesResult:
    json_path: Path
    images: int  # images detected
    detections: int  # boxes written, all images
    failed: list[str] = field(default_factory=list)  # one "path: why" per image that could not be read


def collect_images(paths: list[str | os.PathLike]) -> list[tuple[Path, Path]]:
    """(image file, output path relative to out_dir) for files and, recursively, folders, in a stable order."""
    found: list[tuple[Path, Path]] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for file in sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES):
                found.append((file, Path(path.name or "images") / file.relative_to(path)))
        elif path.is_file():
            found.append((path, Path(path.name)))
        else:
            raise InputError(path, "no such file or folder")
    if not found:
        raise InputError(paths[0] if len(paths) == 1 else None, f"no images found ({', '.join(IMAGE_SUFFIXES)})")
    seen: dict[Path, int] = {}
    out = []
    for file, rel in found:  # two inputs with the same name get _1, _2 suffixes
        n = seen.get(rel, 0)
        seen[rel] = n + 1
        out.append((file, rel if n == 0 else rel.with_name(f"{rel.stem}_{n}{rel.suffix}")))
    return out


def _colour(label: int) -> tuple[int, int, int]:
    """A distinct BGR colour per class (golden-angle hues)."""
    import colorsys

    r, g, b = colorsys.hsv_to_rgb((label * 0.618034) % 1.0, 0.85, 0.95)
    return int(b * 255), int(g * 255), int(r * 255)


def draw_detections(image: np.ndarray, boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray,
                    class_names: list[str]) -> np.ndarray:
    """An HxWx3 uint8 BGR copy of RGB ``image`` with boxes and "class score" tags drawn."""
    import cv2

    canvas = np.ascontiguousarray(image[:, :, ::-1])
    thick = max(1, round(min(image.shape[:2]) / 300))
    scale = max(0.35, min(image.shape[:2]) / 800)
    for (x1, y1, x2, y2), score, label in zip(boxes.tolist(), scores.tolist(), labels.tolist()):
        colour = _colour(label)
        p1, p2 = (int(round(x1)), int(round(y1))), (int(round(x2)) - 1, int(round(y2)) - 1)
        cv2.rectangle(canvas, p1, p2, colour, thick)
        text = f"{class_names[label]} {score:.2f}"
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        top = max(p1[1] - th - base, 0)
        cv2.rectangle(canvas, (p1[0], top), (p1[0] + tw, top + th + base), colour, -1)
        cv2.putText(canvas, text, (p1[0], top + th), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return canvas


def _write_image(path: Path, bgr: np.ndarray) -> None:
    import cv2

    ok, data = cv2.imencode(path.suffix.lower() if path.suffix else ".png", bgr)
    if not ok:  # a format this OpenCV cannot write: fall back to PNG
        ok, data = cv2.imencode(".png", bgr)
        path = path.with_suffix(".png")
    atomic_write_bytes(path, data.tobytes())


def detect_files(paths: list[str | os.PathLike], out_dir: str | os.PathLike, weights: str | os.PathLike, *,
                 config=None, score_thresh: float | None = None, overrides=(), device: str = "auto",
                 batch_size: int | None = None, progress: bool = False,
                 say: Callable[[str], None] | None = None) -> DetectFilesResult:
    """Detect objects in every image of ``paths``; write annotated images and detections.json to ``out_dir``."""
    from detect.engine.distributed import resolve_device
    from detect.inference import load_detector, run_detector

    say = say or (lambda message: None)
    files = collect_images(list(paths))
    overrides = list(overrides) + ([f"test.score_thresh={score_thresh}"] if score_thresh is not None else [])
    model, cfg, class_names = load_detector(weights, config, resolve_device(device), overrides)
    out = Path(out_dir)
    batch_size = batch_size or cfg.test.batch_size
    records, failed, total = [], [], 0
    bar = _bar(progress, len(files))
    for start in range(0, len(files), batch_size):
        batch = []
        for file, rel in files[start : start + batch_size]:
            try:
                batch.append((file, rel, load_image(file)))
            except InputError as exc:
                failed.append(str(exc))
                say(str(exc))
        if batch:
            dets, _ = run_detector(model, cfg, [img for _, _, img in batch], batch_size=batch_size)
            for (file, rel, image), det in zip(batch, dets):
                _write_image(out / rel, draw_detections(image, det["boxes"], det["scores"], det["labels"], class_names))
                records.append(_record(file, image, det, class_names))
                total += len(det["scores"])
        if bar is not None:
            bar.advance(bar.task_ids[0], len(files[start : start + batch_size]))
    if bar is not None:
        bar.stop()
    json_path = atomic_write_json(out / "detections.json", {"images": records})
    return DetectFilesResult(json_path, len(records), total, failed)


def _record(file: Path, image: np.ndarray, det: dict, class_names: list[str]) -> dict:
    return {
        "file": str(file),
        "width": int(image.shape[1]),
        "height": int(image.shape[0]),
        "detections": [
            {"label": class_names[lab], "score": float(s), "box": [float(v) for v in box]}
            for box, s, lab in zip(det["boxes"].tolist(), det["scores"].tolist(), det["labels"].tolist())
        ],
    }


def _bar(enabled: bool, total: int):
    if not enabled:
        return None
    from rich.console import Console
    from rich.progress import Progress

    bar = Progress(console=Console(stderr=True), transient=True)
    bar.start()
    bar.add_task("detecting", total=total)
    return bar
