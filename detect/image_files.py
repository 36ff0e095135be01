"""``detladder detect`` as a library call: image files and folders in, annotated images and JSON out.

``detect_files`` finds the images (folders recursively: jpg, jpeg, png, bmp,
webp), runs the detector in batches, writes one annotated copy of each image
under ``out_dir/annotated/`` (same relative path; boxes, class and score drawn
with OpenCV) and ``out_dir/detections.json``::

    {"images": [{"file", "width", "height",
                 "detections": [{"label", "score", "box": [x1, y1, x2, y2]}]}]}

The user's images are never written over: a run whose annotated copy would
land on one of its input files is refused before any work (``InputError``),
and when a folder is searched, annotated folders of this run and of earlier
runs (an ``annotated/`` beside a ``detections.json``) are left out, so a re-run
never takes its own outputs as inputs.

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
from eval.files import atomic_write_bytes, atomic_write_json, check_writable


#: Annotated copies go in this folder under ``out_dir``; ``detections.json`` sits beside it.
ANNOTATED_DIR = "annotated"
JSON_NAME = "detections.json"


@dataclass
class DetectFilesResult:
    json_path: Path
    image_dir: Path  # where the annotated copies went (out_dir/annotated)
    images: int  # images detected
    detections: int  # boxes written, all images
    failed: list[str] = field(default_factory=list)  # one "path: why" per image that could not be read


def _same_path(a: Path, b: Path) -> bool:
    """True when ``a`` and ``b`` name the same file or folder (links and ``..`` resolved)."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet): compare the resolved names
        return a.resolve() == b.resolve()


def _is_detect_output(folder: Path, image_dir: Path | None) -> bool:
    """True for this run's annotated folder and for an earlier run's (``annotated/`` beside detections.json)."""
    if image_dir is not None and _same_path(folder, image_dir):
        return True
    return folder.name == ANNOTATED_DIR and (folder.parent / JSON_NAME).is_file()


def _walk(root: Path, image_dir: Path | None) -> list[Path]:
    """Image files under ``root``, sorted, leaving out annotated folders (symlinked folders are not followed)."""
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = [d for d in dirnames if not _is_detect_output(here / d, image_dir)]
        files += [here / f for f in filenames if Path(f).suffix.lower() in IMAGE_SUFFIXES and (here / f).is_file()]
    return sorted(files)


def collect_images(paths: list[str | os.PathLike], out_dir: str | os.PathLike | None = None) -> list[tuple[Path, Path]]:
    """(image file, output path relative to the annotated folder) for files and, recursively, folders.

    The order is stable. With ``out_dir``, folders are searched without its
    ``annotated/`` folder; annotated folders of earlier runs are always left out.
    """
    image_dir = None if out_dir is None else Path(out_dir) / ANNOTATED_DIR
    found: list[tuple[Path, Path]] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for file in _walk(path, image_dir):
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


def _file_id(path: Path) -> tuple[int, int] | None:
    """(device, inode) of an existing file, None if there is none: two names with one id are one file."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino


def check_outputs(files: list[tuple[Path, Path]], out_dir: str | os.PathLike) -> None:
    """Refuse (``InputError``) a run that would write an annotated copy or the JSON over one of its inputs.

    Only outputs that already exist can be inputs, so this compares the
    (device, inode) of each existing output path with those of the inputs:
    hard links, symlinks and different spellings of one path are all caught.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(out, "--out must be a folder, and this is a file")
    inputs = {_file_id(file): file for file, _ in files}
    inputs.pop(None, None)
    targets = [out / JSON_NAME] + [out / ANNOTATED_DIR / rel for _, rel in files]
    for target in targets:
        hit = inputs.get(_file_id(target))
        if hit is not None:
            raise InputError(hit, f"an input image, and this --out would write {target} over it; "
                                  "choose another --out")


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


def _write_image(path: Path, bgr: np.ndarray, inputs: set) -> None:
    """Encode by ``path``'s suffix (PNG if OpenCV cannot) and write atomically, never over a file in ``inputs``."""
    import cv2

    ok, data = cv2.imencode(path.suffix.lower() if path.suffix else ".png", bgr)
    if not ok:  # a format this OpenCV cannot write: fall back to PNG
        ok, data = cv2.imencode(".png", bgr)
        path = path.with_suffix(".png")
    if _file_id(path) in inputs:  # only the PNG fallback can get here past check_outputs
        raise InputError(path, "an input image, and its annotated copy would be written over it; "
                               "choose another --out")
    atomic_write_bytes(path, data.tobytes())


def detect_files(paths: list[str | os.PathLike], out_dir: str | os.PathLike, weights: str | os.PathLike, *,
                 config=None, score_thresh: float | None = None, overrides=(), device: str = "auto",
                 batch_size: int | None = None, progress: bool = False,
                 say: Callable[[str], None] | None = None) -> DetectFilesResult:
    """Detect objects in every image of ``paths``; write annotated copies to ``out_dir/annotated`` and
    ``out_dir/detections.json``. Raises ``InputError`` before any work if an output would replace an input."""
    say = say or (lambda message: None)
    if score_thresh is not None:  # the option stands for test.score_thresh: the same range, checked up front
        from detect.config import check_setting

        score_thresh = check_setting("test.score_thresh", score_thresh, "--score-thresh")
    out = Path(out_dir)
    files = collect_images(list(paths), out)
    check_outputs(files, out)
    check_writable(out, directory=True)
    inputs = {_file_id(file) for file, _ in files} - {None}

    from eval.gc_pause import no_gc

    with no_gc():  # torch: only once the files are known to be fine
        from detect.engine.distributed import resolve_device
        from detect.inference import load_detector, run_detector

    model, cfg, class_names = load_detector(weights, config, resolve_device(device), overrides)
    image_dir = out / ANNOTATED_DIR
    batch_size = batch_size or cfg.test.batch_size
    records, failed, total = [], [], 0
    bar = _bar(progress, len(files))
    for start in range(0, len(files), batch_size):
        batch = []
        for file, rel in files[start : start + batch_size]:
            try:
                batch.append((file, rel, load_image(file, cfg.data.max_image_pixels)))
            except InputError as exc:
                failed.append(str(exc))
                say(str(exc))
        if batch:
            dets, _ = run_detector(model, cfg, [img for _, _, img in batch], score_thresh=score_thresh)
            for (file, rel, image), det in zip(batch, dets):
                canvas = draw_detections(image, det["boxes"], det["scores"], det["labels"], class_names)
                _write_image(image_dir / rel, canvas, inputs)
                records.append(_record(file, image, det, class_names))
                total += len(det["scores"])
        if bar is not None:
            bar.advance(bar.task_ids[0], len(files[start : start + batch_size]))
    if bar is not None:
        bar.stop()
    json_path = atomic_write_json(out / JSON_NAME, {"images": records})
    return DetectFilesResult(json_path, image_dir, len(records), total, failed)


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
