"""The issue-5 training target: configs/ladder/faster_rcnn.yaml on `detladder data synth` defaults.

Synthesises the default dataset (500 train / 100 test, 128 px, seed 0) unless
``--data`` is given, trains the ladder's Faster R-CNN, evaluates mAP@0.5
(voc12) on the test split with the shared calculator, and prints training
seconds, s/iteration and mAP. Target: mAP >= 0.85 within 3 minutes of training
on a 2-core CPU. Say how loaded the machine was (load average is printed).

    .venv/bin/python benchmarks/train_faster_rcnn.py --out runs/bench_frcnn [--set train.iterations=600]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="runs/bench_frcnn")
    parser.add_argument("--data", default=None, help="an existing VOC root (default: synthesise into OUT/synth)")
    parser.add_argument("--config", default="configs/ladder/faster_rcnn.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()

    import torch

    from detect.config import load_config
    from detect.data.synth import make_synthetic_voc
    from detect.data.voc import VOCDataset
    from detect.model_eval import detect_split, evaluate_detections
    from detect.inference import load_detector
    from detect.train import train

    out = Path(args.out)
    data = Path(args.data) if args.data else out / "synth"
    if not args.data and not (data / "ImageSets" / "Main" / "test.txt").exists():
        make_synthetic_voc(data)  # the `detladder data synth` defaults
    run = out / "run"
    shutil.rmtree(run, ignore_errors=True)
    cfg = load_config(args.config, args.overrides)
    load_before = os.getloadavg()
    result = train(cfg, run, data_root=data)
    model, cfg, _ = load_detector(result.model_path)
    voc = VOCDataset(data, "test")
    tick = time.perf_counter()
    dets, _ = detect_split(model, cfg, voc)
    test_seconds = time.perf_counter() - tick
    res = evaluate_detections(voc, dets, "voc12")
    print(f"config {args.config} {' '.join(args.overrides)}; torch threads {torch.get_num_threads()}")
    print(f"load average before/after: {load_before[0]:.1f} / {os.getloadavg()[0]:.1f}")
    print(f"train: {result.iterations} iterations in {result.train_seconds:.1f} s "
          f"({result.train_seconds / result.iterations:.3f} s/iteration)")
    print(f"test: {len(voc)} images in {test_seconds:.1f} s; mAP@0.5 (voc12) = {res.mAP:.4f}")
    print("per class: " + ", ".join(f"{k} {v:.3f}" for k, v in res.per_class.items() if v is not None))


if __name__ == "__main__":
    main()
