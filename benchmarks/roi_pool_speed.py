"""RoI max pooling forward: detect.ops.roi_pool's range-max table vs torchvision's roi_pool kernel.

    .venv/bin/python benchmarks/roi_pool_speed.py [--rois 2000] [--channels 128] [--size 16] [--runs 21]

Fast R-CNN's test-time case by default: one 128 px image's 16x16x128 feature map
(stride 8), 2000 RoIs, 7x7 bins, one torch thread, no gradient. The RoIs are
random boxes of 8-128 px inside the image (Selective Search's are of that
kind). The two ops run alternately (so machine load hits both alike); every
run asserts the outputs are equal; the medians and their ratio are printed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _rois(n: int, image: int, seed: int) -> torch.Tensor:
    """(n, 5) float32 RoIs on image 0: corners uniform, sides 8-``image`` px, clipped to the image."""
    g = torch.Generator().manual_seed(seed)
    wh = 8 + torch.rand(n, 2, generator=g) * (image - 8)
    xy = torch.rand(n, 2, generator=g) * (image - wh)
    return torch.cat([torch.zeros(n, 1), xy, xy + wh], dim=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rois", type=int, default=2000)
    parser.add_argument("--channels", type=int, default=128)
    parser.add_argument("--size", type=int, default=16, help="feature map side (the image is 8x that)")
    parser.add_argument("--output", type=int, default=7, help="bins per side")
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    from torchvision.ops import roi_pool as tv_roi_pool

    from detect.ops.roi_pool import roi_pool, use_table

    torch.set_num_threads(args.threads)
    feats = torch.randn(1, args.channels, args.size, args.size, generator=torch.Generator().manual_seed(0))
    times: dict[str, list[float]] = {"table": [], "torchvision": []}
    print(f"uses the table: {use_table(feats, args.rois, args.output**2)}")
    with torch.no_grad():
        for run in range(args.runs + 1):  # run 0 warms up and is not counted
            rois = _rois(args.rois, 8 * args.size, seed=run)
            t0 = time.perf_counter()
            ours = roi_pool(feats, rois, args.output, 0.125)
            t1 = time.perf_counter()
            ref = tv_roi_pool(feats, rois, args.output, 0.125)
            t2 = time.perf_counter()
            assert torch.equal(ours, ref), f"run {run}: outputs differ"
            if run:
                times["table"].append(t1 - t0)
                times["torchvision"].append(t2 - t1)
    ours_ms, ref_ms = (1000 * statistics.median(times[k]) for k in ("table", "torchvision"))
    print(f"{args.rois} RoIs, {args.channels} ch, {args.size}x{args.size} map, {args.output}x{args.output} bins, "
          f"{args.threads} thread(s), median of {args.runs} alternating runs, load average {os.getloadavg()[0]:.1f}")
    print(f"detect.ops.roi_pool:       {ours_ms:8.2f} ms")
    print(f"torchvision.ops.roi_pool:  {ref_ms:8.2f} ms")
    print(f"torchvision / ours: {ref_ms / ours_ms:.1f}x (outputs equal in every run)")


if __name__ == "__main__":
    main()
