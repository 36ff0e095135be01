"""How fast is ``detladder eval``? Side by side with pycocotools (and torchmetrics, if installed), one run.

Generates a corpus of 5,000 images, 20 classes and about 100 detections per
image (about 500k detections) in COCO format — and the same corpus in VOC
layout (XML + devkit result files) — in a temporary directory, then times:

* ``detladder eval --protocol coco`` end to end in a fresh interpreter
  (Python start-up, JSON parsing, checks, evaluation, writing the JSON);
* pycocotools' COCOeval evaluate + accumulate + summarize, in-process (the
  COCO/loadRes loading is timed separately and not counted);
* torchmetrics' MeanAveragePrecision (update + compute), if importable;
* ``detladder eval --protocol voc07 / voc12`` on the COCO files and on the
  VOC-layout files.

and checks that our 12 stats equal pycocotools' (max |difference|).

Usage: python benchmarks/eval_speed.py [--images 5000] [--repeat 3] [--skip-torchmetrics] [--keep DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import orjson

REPO = Path(__file__).resolve().parents[1]
NUM_CLASSES = 20


def make_corpus(out: Path, num_images: int, dets_per_image: int = 100, seed: int = 0) -> dict:
    """Write gt.json, results.json and a VOC root + result dir; return the paths."""
    rng = np.random.default_rng(seed)
    W, H = 640, 480
    images, anns, results = [], [], []
    voc_objects, voc_lines = {}, [[] for _ in range(NUM_CLASSES)]
    for i in range(num_images):
        image_id = i + 1
        images.append({"id": image_id, "width": W, "height": H, "file_name": f"{image_id:06d}.jpg"})
        n = int(rng.integers(1, 13))
        side = np.exp(rng.uniform(np.log(8), np.log(400), (n, 2)))  # small, medium and large objects
        xy = rng.uniform(0, 1, (n, 2)) * (np.array([W, H]) - side)
        gt_boxes = np.round(np.concatenate([xy, xy + side], 1))  # whole pixels, 0-based exclusive
        gt_boxes[:, 2:] = np.maximum(gt_boxes[:, 2:], gt_boxes[:, :2] + 1)
        labels = rng.integers(0, NUM_CLASSES, n)
        crowd = rng.random(n) < 0.01
        voc_objects[image_id] = []
        for b, lab, c in zip(gt_boxes, labels, crowd):
            w, h = b[2] - b[0], b[3] - b[1]
            anns.append({"id": len(anns) + 1, "image_id": image_id, "category_id": int(lab) + 1,
                         "bbox": [float(b[0]), float(b[1]), float(w), float(h)], "area": float(w * h * 0.8),
                         "iscrowd": int(c)})
            voc_objects[image_id].append((int(lab), b, bool(c)))
        # detections: jittered copies of the objects (some with the wrong class), then background boxes
        k = dets_per_image
        src = rng.integers(0, n, k)
        jitter = rng.normal(0, 0.15, (k, 4)) * np.repeat(gt_boxes[src, 2:] - gt_boxes[src, :2], 2, 0).reshape(k, 4)
        boxes = gt_boxes[src] + jitter
        background = rng.random(k) < 0.5
        bxy = rng.uniform(0, 1, (k, 2)) * np.array([W - 40, H - 40])
        bside = np.exp(rng.uniform(np.log(8), np.log(300), (k, 2)))
        boxes[background] = np.concatenate([bxy, np.minimum(bxy + bside, [W, H])], 1)[background]
        boxes = np.clip(boxes, 0, [W, H, W, H])
        boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 1)
        boxes = np.round(boxes, 2)
        det_labels = np.where(rng.random(k) < 0.8, labels[src], rng.integers(0, NUM_CLASSES, k))
        scores = np.round(np.where(background, rng.beta(1, 4, k), rng.beta(4, 1.5, k)), 4)
        for b, lab, s in zip(boxes.tolist(), det_labels.tolist(), scores.tolist()):
            results.append({"image_id": image_id, "category_id": lab + 1,
                            "bbox": [b[0], b[1], round(b[2] - b[0], 2), round(b[3] - b[1], 2)], "score": s})
            voc_lines[lab].append(f"{image_id:06d} {s} {b[0] + 1:.2f} {b[1] + 1:.2f} {b[2]:.2f} {b[3]:.2f}\n")
    cats = [{"id": c + 1, "name": f"class{c:02d}"} for c in range(NUM_CLASSES)]
    paths = {"gt": out / "gt.json", "dets": out / "results.json", "voc": out / "voc", "vocres": out / "vocres"}
    paths["gt"].write_bytes(orjson.dumps({"images": images, "annotations": anns, "categories": cats}))
    paths["dets"].write_bytes(orjson.dumps(results))
    _write_voc(paths["voc"], paths["vocres"], voc_objects, voc_lines, W, H)
    return paths


def _write_voc(root: Path, resdir: Path, objects: dict, lines: list, W: int, H: int) -> None:
    """The same ground truth as VOC XML (crowds as difficult) and the detections as devkit files."""
    (root / "Annotations").mkdir(parents=True)
    (root / "ImageSets" / "Main").mkdir(parents=True)
    resdir.mkdir()
    (root / "classes.txt").write_text("".join(f"class{c:02d}\n" for c in range(NUM_CLASSES)))
    for image_id, objs in objects.items():
        body = "".join(
            f"<object><name>class{lab:02d}</name><difficult>{int(d)}</difficult><bndbox><xmin>{int(b[0]) + 1}</xmin>"
            f"<ymin>{int(b[1]) + 1}</ymin><xmax>{int(b[2])}</xmax><ymax>{int(b[3])}</ymax></bndbox></object>"
            for lab, b, d in objs)
        (root / "Annotations" / f"{image_id:06d}.xml").write_text(
            f"<annotation><filename>{image_id:06d}.jpg</filename><size><width>{W}</width><height>{H}</height>"
            f"</size>{body}</annotation>")
    (root / "ImageSets" / "Main" / "test.txt").write_text("".join(f"{i:06d}\n" for i in objects))
    for c, rows in enumerate(lines):
        (resdir / f"comp4_det_test_class{c:02d}.txt").write_text("".join(rows))


def time_cli(args: list[str], repeat: int) -> tuple[float, list[float], float]:
    """Median wall time of ``detladder ARGS`` in a fresh interpreter (start-up included), runs, median CPU time."""
    times, cpu = [], []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        out = subprocess.run([str(Path(sys.executable).parent / "detladder"), *args], capture_output=True, text=True)
        times.append(time.perf_counter() - t0)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        if out.returncode != 0:
            raise SystemExit(f"detladder {' '.join(args)} failed: {out.stderr}")
    return statistics.median(times), times, statistics.median(cpu)


def time_pycocotools(gt: Path, dets: Path) -> tuple[float, float, np.ndarray]:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        t0 = time.perf_counter()
        coco_gt = COCO(str(gt))
        coco_dt = coco_gt.loadRes(str(dets))
        t1, c1 = time.perf_counter(), time.process_time()
        ev = COCOeval(coco_gt, coco_dt, iouType="bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
        t2, c2 = time.perf_counter(), time.process_time()
    return t1 - t0, t2 - t1, c2 - c1, np.array(ev.stats)


def time_torchmetrics(gt: Path, dets: Path) -> float | None:
    try:
        import torch
        from torchmetrics.detection import MeanAveragePrecision
    except ImportError:
        return None
    g, d = orjson.loads(gt.read_bytes()), orjson.loads(dets.read_bytes())
    by_img = {im["id"]: ([], []) for im in g["images"]}
    for a in g["annotations"]:
        by_img[a["image_id"]][0].append(a)
    for r in d:
        by_img[r["image_id"]][1].append(r)

    def xyxy(rows):
        b = torch.tensor([r["bbox"] for r in rows], dtype=torch.float64).reshape(-1, 4)
        return torch.cat([b[:, :2], b[:, :2] + b[:, 2:]], 1)

    preds, targets = [], []
    for gts, ds in by_img.values():
        preds.append({"boxes": xyxy(ds), "scores": torch.tensor([r["score"] for r in ds], dtype=torch.float64),
                      "labels": torch.tensor([r["category_id"] for r in ds], dtype=torch.long)})
        targets.append({"boxes": xyxy(gts), "labels": torch.tensor([a["category_id"] for a in gts], dtype=torch.long),
                        "iscrowd": torch.tensor([a["iscrowd"] for a in gts], dtype=torch.long),
                        "area": torch.tensor([a["area"] for a in gts], dtype=torch.float64)})
    t0 = time.perf_counter()
    metric = MeanAveragePrecision(iou_type="bbox")
    metric.update(preds, targets)
    with contextlib.redirect_stdout(io.StringIO()):
        metric.compute()
    return time.perf_counter() - t0


def torchmetrics_in_child(p: dict, timeout: float) -> str:
    """torchmetrics' time, measured in a child process so that a slow run can be abandoned."""
    try:
        out = subprocess.run([sys.executable, __file__, "--torchmetrics-only", str(p["gt"]), str(p["dets"])],
                             capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"did not finish within {timeout:.0f} s"
    return out.stdout.strip() or f"failed: {out.stderr.strip().splitlines()[-1:]}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=5000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-torchmetrics", action="store_true")
    ap.add_argument("--keep", type=Path, help="write the corpus here and keep it")
    ap.add_argument("--torchmetrics-timeout", type=float, default=600, help="give up on torchmetrics after this")
    ap.add_argument("--torchmetrics-only", nargs=2, type=Path, help=argparse.SUPPRESS)  # GT DETS, in a child
    args = ap.parse_args()
    if args.torchmetrics_only:
        tm = time_torchmetrics(*args.torchmetrics_only)
        print("not installed (pip install '.[bench]')" if tm is None else f"{tm:6.2f} s")
        return
    tmp = Path(tempfile.mkdtemp(prefix="detladder-bench-")) if args.keep is None else args.keep
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        t0 = time.perf_counter()
        p = make_corpus(tmp, args.images)
        n_dets = len(orjson.loads(p["dets"].read_bytes()))
        print(f"corpus: {args.images} images, {NUM_CLASSES} classes, {n_dets} detections, "
              f"results.json {p['dets'].stat().st_size / 1e6:.0f} MB (made in {time.perf_counter() - t0:.0f} s)")
        out_json = tmp / "ours.json"
        ours, runs, ours_cpu = time_cli(["eval", "--gt", str(p["gt"]), "--dets", str(p["dets"]), "--protocol", "coco",
                                         "--json", str(out_json)], args.repeat)
        print(f"detladder eval --protocol coco (end to end):  {ours:6.2f} s   (CPU {ours_cpu:.2f} s)   "
              f"runs {[round(t, 2) for t in runs]}")
        load, ref, ref_cpu, ref_stats = time_pycocotools(p["gt"], p["dets"])
        print(f"pycocotools evaluate+accumulate+summarize:    {ref:6.2f} s   (CPU {ref_cpu:.2f} s)   "
              f"(+ {load:.2f} s loading, not counted)")
        diff = np.abs(np.array(json.loads(out_json.read_text())["stats"]) - ref_stats).max()
        print(f"speed-up: {ref / ours:.1f}x wall, {ref_cpu / ours_cpu:.1f}x CPU   max |stats difference|: {diff:.3g}")
        if not args.skip_torchmetrics:
            print("torchmetrics MeanAveragePrecision:            " + torchmetrics_in_child(p, args.torchmetrics_timeout))
        for proto in ("voc07", "voc12"):
            t, _, c = time_cli(["eval", "--gt", str(p["gt"]), "--dets", str(p["dets"]), "--protocol", proto],
                               args.repeat)
            tv, _, cv = time_cli(["eval", "--gt", str(p["voc"]), "--dets", str(p["vocres"]), "--split", "test",
                                  "--protocol", proto], args.repeat)
            print(f"detladder eval --protocol {proto}: COCO files {t:5.2f} s (CPU {c:.2f} s), "
                  f"VOC root + devkit files {tv:5.2f} s (CPU {cv:.2f} s)")
        print(f"machine load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    finally:
        if args.keep is None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
