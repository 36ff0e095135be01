"""Faster R-CNN R50-FPN CPU latency: detladder's model vs torchvision's, side by side in one run.

Both models are built as ``fasterrcnn_resnet50_fpn(weights=COCO_V1)`` builds them
(FrozenBatchNorm eps 0, 3 trainable stages) and share ONE state dict. No checkpoint
is on this machine and nothing is downloaded, so the weights are random unless
``--weights`` names torchvision's ``fasterrcnn_resnet50_fpn_coco-258fb6c6.pth``;
with random weights a low score threshold keeps the box count realistic.
Runs alternate in ABBA order so machine load and cache warmth hit both alike; the medians and their ratio are printed.

    .venv/bin/python benchmarks/faster_rcnn_speed.py --runs 10
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def torchvision_model(weights: str | None, score_thresh: float):
    from torchvision.models import resnet50
    from torchvision.models.detection import FasterRCNN
    from torchvision.models.detection._utils import overwrite_eps
    from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor
    from torchvision.ops import FrozenBatchNorm2d

    model = FasterRCNN(_resnet_fpn_extractor(resnet50(norm_layer=FrozenBatchNorm2d), 3), num_classes=91,
                       box_score_thresh=score_thresh)
    if weights:
        model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    overwrite_eps(model, 0.0)
    return model.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--weights", default=None, help="torchvision's COCO checkpoint file (optional)")
    parser.add_argument("--score-thresh", type=float, default=None, help="default 0.05 with weights, 0.01 without")
    args = parser.parse_args()
    score = args.score_thresh if args.score_thresh is not None else (0.05 if args.weights else 0.01)

    from skimage import data

    from detect.build import build_detector
    from detect.config import load_config

    torch.manual_seed(0)
    ref = torchvision_model(args.weights, score)
    cfg = load_config("configs/coco/faster_rcnn_r50_fpn.yaml", [f"test.score_thresh={score}"])
    ours = build_detector(cfg, len(cfg.classes)).eval()
    ours.load_state_dict(ref.state_dict())
    image = [torch.from_numpy(data.astronaut()).permute(2, 0, 1).float() / 255]  # 512x512 photo -> 800x800
    times: dict[str, list[float]] = {"torchvision": [], "detladder": []}
    with torch.inference_mode():
        a, b = ref(image)[0], ours(image)[0]  # warm-up, and the outputs must agree
        same = torch.equal(a["labels"], b["labels"]) and torch.allclose(a["boxes"], b["boxes"], atol=1e-3)
        for run in range(args.runs):
            pair = [("torchvision", ref), ("detladder", ours)]
            for name, model in (pair if run % 2 == 0 else pair[::-1]):  # ABBA order: no position bias
                tick = time.perf_counter()
                model(image)
                times[name].append(time.perf_counter() - tick)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"weights: {'checkpoint ' + args.weights if args.weights else 'random (no checkpoint on disk)'}; "
          f"image 512x512 -> 800x800; threads {torch.get_num_threads()}; runs {args.runs}")
    print(f"detections identical: {same} ({len(a['boxes'])} boxes)")
    for name, values in times.items():
        print(f"{name:12s} median {med[name] * 1000:8.1f} ms   (min {min(values) * 1000:.1f}, max {max(values) * 1000:.1f})")
    print(f"ratio detladder / torchvision: {med['detladder'] / med['torchvision']:.3f}")


if __name__ == "__main__":
    main()
