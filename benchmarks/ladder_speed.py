"""The ladder's costs, measured in one run: R-CNN vs Fast R-CNN network time, and each rung's training.

``speed``: test-time *network* seconds per image of R-CNN (crop, warp and run
the whole backbone per proposal) and Fast R-CNN (backbone once, RoI pooling)
on the same images with the SAME proposals (Selective Search boxes of each
image, tiled with a small jitter to exactly ``--proposals`` boxes; 2000 is the
papers' count). Both detectors are built from configs/ladder/*.yaml (same
backbone, width and seed); weights do not change the compute, so untrained
ones are used unless ``--rcnn-weights`` / ``--fast-weights`` are given.
Runs alternate R-CNN / Fast R-CNN per image so machine load hits both alike;
medians and their ratio are printed.

``train``: trains every named rung with its ladder config on ``--data`` (any
``--set`` overrides apply to all), evaluates on the test split (voc12) and
prints train seconds, iterations, mAP and seconds/image (proposals, network).

    .venv/bin/python benchmarks/ladder_speed.py speed --data runs/synth --images 10 --proposals 2000
    .venv/bin/python benchmarks/ladder_speed.py train --data runs/synth --out runs/ladder-bench
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
LADDER = REPO / "configs" / "ladder"


def _load(rung: str, weights: str | None, num_classes: int):
    from detect.build import build_detector
    from detect.config import load_config
    from detect.inference import load_detector

    if weights:
        return load_detector(weights, LADDER / f"{rung}.yaml")[0].eval()
    return build_detector(load_config(LADDER / f"{rung}.yaml"), num_classes).eval()


def _same_proposals(boxes: np.ndarray, n: int, size: tuple[int, int], rng) -> torch.Tensor:
    """``boxes`` tiled with +-2 px jitter (clipped) to exactly ``n`` rows: (n, 4) float32."""
    reps = int(np.ceil(n / max(len(boxes), 1)))
    tiled = np.tile(boxes, (reps, 1))[:n].astype(np.float32)
    tiled[len(boxes):] += rng.uniform(-2, 2, tiled[len(boxes):].shape).astype(np.float32)
    h, w = size
    tiled[:, 0::2] = tiled[:, 0::2].clip(0, w)
    tiled[:, 1::2] = tiled[:, 1::2].clip(0, h)
    return torch.from_numpy(tiled)


def speed(args) -> None:
    from detect.data.voc import VOCDataset
    from proposals.cache import compute_proposals

    voc = VOCDataset(args.data, "test")
    rcnn = _load("rcnn", args.rcnn_weights, len(voc.class_names))
    fast = _load("fast_rcnn", args.fast_weights, len(voc.class_names))
    rng = np.random.default_rng(0)
    times: dict[str, list[float]] = {"rcnn": [], "fast_rcnn": []}
    cpu: dict[str, list[float]] = {"rcnn": [], "fast_rcnn": []}  # process CPU s: robust to other load at 1 thread
    ss_seconds, ss_counts = [], []
    for i in range(min(args.images, len(voc))):
        image, _ = voc[i]
        boxes, seconds = compute_proposals(image, "selective_search", {"mode": "fast"})
        ss_seconds.append(seconds)
        ss_counts.append(len(boxes))
        props = [_same_proposals(boxes, args.proposals or len(boxes), image.shape[:2], rng)]
        x = [torch.from_numpy(np.array(image)).permute(2, 0, 1).float() / 255]
        for _ in range(args.repeat):
            for name, model in (("rcnn", rcnn), ("fast_rcnn", fast)):
                c0 = time.process_time()
                _, st = model.detect_with_timing(x, props)
                cpu[name].append(time.process_time() - c0)
                times[name].append(st.network)
    r, f = statistics.median(times["rcnn"]), statistics.median(times["fast_rcnn"])
    n = args.proposals or f"SS ({statistics.median(ss_counts):.0f} median)"
    print(f"images: {min(args.images, len(voc))} x {args.repeat} runs, proposals/image: {n}, "
          f"torch threads: {torch.get_num_threads()}, load average: {os.getloadavg()[0]:.1f}")
    rc, fc = statistics.median(cpu["rcnn"]), statistics.median(cpu["fast_rcnn"])
    print(f"{'rung':<10} {'network wall s/image':>21} {'CPU s/image':>12}   (medians)")
    print(f"{'rcnn':<10} {r:>21.4f} {rc:>12.4f}")
    print(f"{'fast_rcnn':<10} {f:>21.4f} {fc:>12.4f}")
    print(f"R-CNN / Fast R-CNN network time: {r / f:.1f}x wall, {rc / fc:.1f}x CPU")
    print(f"Selective Search (counted as proposal time for both): {statistics.median(ss_seconds):.3f} s/image, "
          f"{statistics.median(ss_counts):.0f} boxes")


def train_rungs(args) -> None:
    from detect.config import load_config
    from detect.data.voc import VOCDataset
    from detect.inference import load_detector
    from detect.model_eval import detect_split, evaluate_detections
    from detect.train import train

    import proposals.cache

    # Proposal workers by spawn: forking this process after torch's threads have run can deadlock them.
    proposals.cache.get_all_start_methods = lambda: ["spawn"]
    rows = []
    for rung in args.rungs:
        cfg_path = LADDER / f"{rung}.yaml"
        cfg = load_config(cfg_path, args.set)
        load0 = os.getloadavg()[0]
        result = train(cfg, Path(args.out) / rung, data_root=args.data, progress=False)
        model, config, names = load_detector(result.model_path, cfg_path, "cpu", args.set)
        voc = VOCDataset(args.data, "test", class_names=names)
        start = time.perf_counter()
        dets, times = detect_split(model, config, voc)
        wall = time.perf_counter() - start
        res = evaluate_detections(voc, dets, "voc12")
        row = {"rung": rung, "iterations": result.iterations, "train_seconds": round(result.train_seconds, 1),
               "mAP": round(res.mAP, 4), "proposals_s": round(statistics.mean(t.proposals for t in times), 4),
               "network_s": round(statistics.mean(t.network for t in times), 4), "test_wall_s": round(wall, 1),
               "load_average": round((load0 + os.getloadavg()[0]) / 2, 1)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    print(f"{'rung':<15}{'iters':>7}{'train s':>9}{'mAP@.5':>8}{'prop s/img':>11}{'net s/img':>10}{'load':>6}")
    for r in rows:
        print(f"{r['rung']:<15}{r['iterations']:>7}{r['train_seconds']:>9}{r['mAP']:>8.3f}"
              f"{r['proposals_s']:>11.4f}{r['network_s']:>10.4f}{r['load_average']:>6}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("speed", help="R-CNN vs Fast R-CNN network time at the same proposals")
    s.add_argument("--data", required=True)
    s.add_argument("--images", type=int, default=10)
    s.add_argument("--proposals", type=int, default=2000, help="0 = each image's own Selective Search boxes")
    s.add_argument("--repeat", type=int, default=3)
    s.add_argument("--rcnn-weights")
    s.add_argument("--fast-weights")
    s.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    t = sub.add_parser("train", help="train + evaluate rungs with their ladder configs")
    t.add_argument("--data", required=True)
    t.add_argument("--out", required=True)
    t.add_argument("--rungs", nargs="+", default=["regression", "sliding_window", "rcnn", "fast_rcnn", "faster_rcnn"])
    t.add_argument("--set", action="append", default=[])
    args = parser.parse_args()
    if getattr(args, "threads", 0):
        torch.set_num_threads(args.threads)
    with torch.no_grad() if args.cmd == "speed" else torch.enable_grad():
        speed(args) if args.cmd == "speed" else train_rungs(args)


if __name__ == "__main__":
    main()
