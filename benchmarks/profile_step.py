"""Where one training iteration of each ladder rung spends its time (docs/performance.md).

For every config given (default: the five configs/ladder/*.yaml) on a demo-sized
synthetic dataset, this builds the detector, optimiser and batches exactly as
``detect.train`` does, runs ``--warmup`` iterations, then profiles ``--iterations``
more with ``torch.profiler`` and prints:

* seconds per iteration, split into loading the batch (decode + flip + tensors) and the step
  (forward + backward + optimiser);
* the operators with the largest share of the step's self CPU time (forward and backward
  kernels are separate rows: ``RoIAlignBackward`` and the like).

Self time is what an operator spends outside the operators it calls, so the rows add up
to the whole. Run it on an otherwise idle machine; ``--threads 1`` (the default) makes the
shares comparable between machines, since several of these ops are single-threaded.

    .venv/bin/python benchmarks/profile_step.py --data runs/synth [--threads 2] [--top 12]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
LADDER = ("regression", "sliding_window", "rcnn", "fast_rcnn", "faster_rcnn")


def _batches(config, voc, props, iterations: int):
    from detect.data.training import BatchPlan, TrainingSet, collate

    plan = BatchPlan(len(voc), config.train.batch_size, config.seed, 0, iterations, flip=config.data.flip)
    data = TrainingSet(voc, props)
    for batch in plan:
        yield collate([data[item] for item in batch])


def profile_config(path: Path, data_root: str, warmup: int, iterations: int, top: int,
                   overrides: list[str] = ()) -> dict:
    """Profile ``iterations`` training steps of one config; returns its timings and top operators."""
    import torch

    from detect.build import build_detector
    from detect.config import load_config
    from detect.engine.distributed import setup
    from detect.engine.schedule import build_optimizer, build_scheduler
    from detect.train import _load_data

    from detect.engine.precision import training_precision

    config = load_config(path, [f"data.root={data_root}", *overrides])
    voc, _, props = _load_data(config, lambda m: None, False, setup(torch.device("cpu")))
    model = build_detector(config, len(voc.class_names)).train()
    if config.train.channels_last:  # as detect.train does on the CPU
        model = model.to(memory_format=torch.channels_last)
    precision = training_precision(config.train, torch.device("cpu"))
    optimizer = build_optimizer(model, config.train)
    scheduler = build_scheduler(optimizer, config.train)

    def step(batch) -> None:
        images, targets, proposals, _ = batch
        with precision.autocast():
            losses = model(images, targets, proposals)
        loss = sum(losses.values())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.train.grad_clip or float("inf"))
        optimizer.step()
        scheduler.step()

    batches = _batches(config, voc, props, warmup + iterations)
    for _ in range(warmup):
        step(next(batches))
    load_s = step_s = 0.0
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for _ in range(iterations):
            tick = time.perf_counter()
            batch = next(batches)
            tock = time.perf_counter()
            step(batch)
            load_s += tock - tick
            step_s += time.perf_counter() - tock
    rows = [(e.key, e.self_cpu_time_total / 1e6) for e in prof.key_averages()]
    total = sum(s for _, s in rows)
    rows.sort(key=lambda r: -r[1])
    return {"config": path.stem, "precision": precision.name, "layout": "NHWC" if config.train.channels_last else "NCHW",
            "load_s": load_s / iterations, "step_s": step_s / iterations,
            "ops": [(name, s / total) for name, s in rows[:top]]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="a VOC root (e.g. `detladder data synth --out runs/synth`)")
    parser.add_argument("--configs", nargs="*", type=Path,
                        default=[REPO / "configs" / "ladder" / f"{r}.yaml" for r in LADDER])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        help="config override for every config, e.g. train.cpu_amp=false")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), load average "
          f"{' / '.join(f'{v:.2f}' for v in os.getloadavg())}")
    for path in args.configs:
        result = profile_config(path, args.data, args.warmup, args.iterations, args.top, args.overrides)
        print(f"\n## {result['config']} ({result['precision']}, {result['layout']}): {result['step_s']:.3f} s/iteration step "
              f"+ {result['load_s'] * 1000:.1f} ms loading the batch")
        print("| op | share of the step |\n|---|---|")
        for name, share in result["ops"]:
            print(f"| `{name}` | {share * 100:.1f}% |")
    print(f"\nload average at the end: {' / '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
