"""How fast is ``detladder eval --protocol coco``? Side by side with the exact COCO evaluators, in one run.

Generates a corpus of 5,000 images, 20 classes and 100 detections per image
(500,000 detections, a 42 MB results JSON) in COCO format, and the same corpus
in VOC layout (XML + devkit result files), in a temporary directory. Then it
times, as processes end to end (interpreter start to the stats written), one
tool after the other in turn, ``--repeat`` rounds, and reports the median wall
time and the median CPU time (user + system of the child, all its threads):

* ``detladder eval --protocol coco --json OUT``;
* ultrafast-pycocotools 0.1.14 and hotcoco 1.3.0 (Rust), each in its own
  virtual environment that this script creates on first use
  (``benchmarks/.venv-ultrafast``, ``benchmarks/.venv-hotcoco``, from PyPI);
* optionally (``--pycocotools``) pycocotools itself, from our venv (45-50 s a run).

Ours runs its C kernels (``eval/coco_native.c``, compiled by ``cc`` on first
use and cached in ``eval/__pycache__``); that first run is timed once apart,
with the cache emptied, and not counted.

Exactness: our 12 stats and pycocotools' full ``eval["precision"]`` (T, R, K,
A, M) and ``eval["recall"]`` (T, K, A, M) arrays are compared with each
peer's (and with pycocotools' once, unless ``--skip-oracle``): the number of
differing cells is printed, 0 expected. Beside it: ``detladder eval
--protocol voc07 / voc12`` on the same COCO files and on the VOC-layout files,
and (``--torchmetrics``) torchmetrics' MeanAveragePrecision.

Usage: python benchmarks/eval_speed.py [--images 5000] [--repeat 3] [--pycocotools] [--skip-oracle] [--keep DIR]
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
PEERS = {  # name: (venv folder, pip requirement, module that has COCO and COCOeval)
    "ultrafast-pycocotools 0.1.14": (".venv-ultrafast", "ultrafast-pycocotools==0.1.14", "ultrafast_pycocotools"),
    "hotcoco 1.3.0": (".venv-hotcoco", "hotcoco==1.3.0", "hotcoco"),
}
# What a peer runs, timed as a whole process: load both files, evaluate, accumulate, summarize, write the stats.
# With a fourth argument it also saves eval["precision"] and eval["recall"] (an untimed checking run).
PEER_SCRIPT = """
import contextlib, io, json, sys
if sys.argv[1] == "pycocotools":
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
else:
    mod = __import__(sys.argv[1])
    COCO, COCOeval = mod.COCO, mod.COCOeval
gt_path, dt_path, out = sys.argv[2:5]
with contextlib.redirect_stdout(io.StringIO()):
    gt = COCO(gt_path)
    ev = COCOeval(gt, gt.loadRes(dt_path), "bbox")
    ev.evaluate(); ev.accumulate(); ev.summarize()
json.dump([float(s) for s in ev.stats], open(out, "w"))
if len(sys.argv) > 5:
    import numpy as np
    np.savez(sys.argv[5], precision=np.asarray(ev.eval["precision"]), recall=np.asarray(ev.eval["recall"]))
"""


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


def peer_python(name: str) -> Path:
    """The interpreter of a peer's own venv, created (and the peer installed from PyPI) on first use."""
    folder, requirement, _ = PEERS[name]
    venv = REPO / "benchmarks" / folder
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"creating {venv} ({requirement})", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", requirement], check=True)
    return python


def run_timed(argv: list[str], env: dict | None = None) -> tuple[float, float]:
    """Wall and CPU seconds (the child's user + system time, all threads) of one process; exits on failure."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = subprocess.run(argv, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:3])} ... failed:\n{out.stderr[-2000:]}")
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def detladder_argv(*args: str) -> list[str]:
    return [str(Path(sys.executable).parent / "detladder"), "eval", *args]


def our_arrays(gt: Path, dets: Path) -> tuple[np.ndarray, np.ndarray]:
    """Our full precision / recall arrays through the same readers ``detladder eval`` uses (in-process)."""
    from eval.coco_ap import coco_precision_recall
    from eval.coco_io import read_coco_ground_truth, read_coco_results_flat

    truth = read_coco_ground_truth(gt)
    flat = read_coco_results_flat(dets, truth.image_ids, truth.category_ids)
    return coco_precision_recall(truth.flat, flat, len(truth.gts), len(truth.class_names))[:2]


def compare_arrays(name: str, ours: tuple, stats: list, path: Path, our_stats: list) -> str:
    """'stats max |diff| x, precision: n of N cells differ, recall: ...' against a peer's saved arrays."""
    ref = np.load(path)
    parts = [f"stats max |diff| {np.abs(np.array(stats) - np.array(our_stats)).max():.3g}"]
    for key, mine in zip(("precision", "recall"), ours):
        theirs = ref[key]
        if theirs.shape != mine.shape:
            parts.append(f"{key}: shape {theirs.shape} vs ours {mine.shape}")
        else:
            parts.append(f"{key}: {int((theirs != mine).sum())} of {mine.size} cells differ")
    return f"  {name:30s} " + ", ".join(parts)


def race(tools: dict[str, list[str]], repeat: int) -> dict[str, tuple[list[float], list[float]]]:
    """Run every tool once per round, in turn (alternating, so that load drifts hit all alike)."""
    times: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in tools}
    for _ in range(repeat):
        for name, argv in tools.items():
            wall, cpu = run_timed(argv)
            times[name][0].append(wall)
            times[name][1].append(cpu)
    return times


def report(times: dict, first: str) -> None:
    base = statistics.median(times[first][0])
    for name, (walls, cpus) in times.items():
        wall = statistics.median(walls)
        print(f"  {name:46s} {wall:6.2f} s wall  {statistics.median(cpus):6.2f} s CPU   {wall / base:5.2f}x ours   "
              f"runs {[round(t, 2) for t in walls]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=5000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--pycocotools", action="store_true", help="time pycocotools too (45-50 s a run)")
    ap.add_argument("--skip-oracle", action="store_true", help="do not run pycocotools once for its arrays")
    ap.add_argument("--torchmetrics", action="store_true", help="time torchmetrics' MeanAveragePrecision once")
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
        run_benchmark(args, tmp)
    finally:
        if args.keep is None:
            shutil.rmtree(tmp, ignore_errors=True)


def run_benchmark(args, tmp: Path) -> None:
    t0 = time.perf_counter()
    p = make_corpus(tmp, args.images) if not (tmp / "results.json").exists() else corpus_paths(tmp)
    n_dets = len(orjson.loads(p["dets"].read_bytes()))
    print(f"corpus: {args.images} images, {NUM_CLASSES} classes, {n_dets} detections, "
          f"results.json {p['dets'].stat().st_size / 1e6:.0f} MB (ready in {time.perf_counter() - t0:.0f} s)")
    gt, dets = str(p["gt"]), str(p["dets"])
    out = {name: tmp / f"stats-{k}.json" for k, name in enumerate(["detladder", *PEERS, "pycocotools 2"])}
    tools = {"detladder eval --protocol coco": detladder_argv("--gt", gt, "--dets", dets, "--protocol", "coco",
                                                              "--json", str(out["detladder"]))}
    peers = {name: [str(peer_python(name)), "-c", PEER_SCRIPT, PEERS[name][2], gt, dets, str(out[name])]
             for name in PEERS}
    tools.update(peers)
    if args.pycocotools:
        tools["pycocotools 2"] = [sys.executable, "-c", PEER_SCRIPT, "pycocotools", gt, dets,
                                  str(out["pycocotools 2"])]
    cold = cold_cache_run(tools["detladder eval --protocol coco"])
    print(f"COCO protocol, end to end as processes, median of {args.repeat}, alternating "
          f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores before):")
    report(race(tools, args.repeat), "detladder eval --protocol coco")
    if cold:
        print(f"  (detladder's first run, compiling its C kernels with cc: {cold[0]:.2f} s wall, {cold[1]:.2f} s CPU; "
              "not counted)")
    check_exactness(args, p, peers, out)
    voc = {}
    for proto in ("voc07", "voc12"):
        voc[f"detladder eval --protocol {proto}, COCO files"] = detladder_argv(
            "--gt", gt, "--dets", dets, "--protocol", proto, "--json", str(tmp / f"{proto}-coco.json"))
        voc[f"detladder eval --protocol {proto}, VOC files"] = detladder_argv(
            "--gt", str(p["voc"]), "--dets", str(p["vocres"]), "--split", "test", "--protocol", proto,
            "--json", str(tmp / f"{proto}-voc.json"))
    print("VOC protocols on the same corpus (VOC files: the VOC root's XML and devkit result files):")
    report(race(voc, args.repeat), next(iter(voc)))
    if args.torchmetrics:
        print("torchmetrics MeanAveragePrecision (update + compute, in-process): "
              + torchmetrics_in_child(p, args.torchmetrics_timeout))
    print(f"machine load average after measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


def corpus_paths(tmp: Path) -> dict:
    return {"gt": tmp / "gt.json", "dets": tmp / "results.json", "voc": tmp / "voc", "vocres": tmp / "vocres"}


def cold_cache_run(argv: list[str]):
    """One run of ours with the compiled kernels removed from disk: the C library (built again by cc) and numba's
    cache of the fallback kernels. None when there was nothing to remove."""
    cache = REPO / "eval" / "__pycache__"
    stale = list(cache.glob("coco_native-*.so")) + list(cache.glob("coco_*.nbi")) + list(cache.glob("coco_*.nbc"))
    if not stale:
        return None
    for f in stale:
        f.unlink()
    return run_timed(argv)


def check_exactness(args, p: dict, peers: dict, out: dict) -> None:
    """Full precision / recall arrays of every peer (and pycocotools once) against ours."""
    our_stats = json.loads(out["detladder"].read_text())["stats"]
    ours = our_arrays(p["gt"], p["dets"])
    print("exactness against ours (identical expected):")
    checks = dict(peers)
    if not args.skip_oracle:
        checks["pycocotools 2"] = [sys.executable, "-c", PEER_SCRIPT, "pycocotools", str(p["gt"]), str(p["dets"]),
                                   str(out["pycocotools 2"])]
    for name, argv in checks.items():
        arrays = out[name].with_suffix(".npz")
        subprocess.run(argv + [str(arrays)], check=True)
        print(compare_arrays(name, ours, json.loads(out[name].read_text()), arrays, our_stats))


if __name__ == "__main__":
    main()
