"""Every backbone's FLOPs and CPU latency at 128, 224 and 600 px, one table per size.

    .venv/bin/python benchmarks/backbones_speed.py [--sizes 128 224 600] [--runs 11] [--threads 1]
                                                   [--name resnet18 ...] [--json OUT]

Batch 1, random init (no weights needed), ``torch.inference_mode``; one warm-up
pass, then the median wall and process-CPU seconds of ``--runs`` passes with a
fixed torch thread count (wall far above CPU: the machine was busy; the load
average is printed with each table). FLOPs are multiply-adds (torchvision's
GFLOPS convention). The full default run takes several minutes of one core:
run it on an otherwise idle machine; docs/backbones.md holds the figures.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    from detect.backbones import BACKBONES
    from detect.backbones.measure import backbone_table
    from detect.cli.backbones import print_table

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 224, 600])
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--name", action="append", default=[], help="only these backbones (repeatable)")
    parser.add_argument("--json", type=Path, default=None, help="write {size: table} here")
    args = parser.parse_args()
    names = args.name or list(BACKBONES)
    tables = {}
    for size in args.sizes:
        tables[size] = backbone_table(size, names, runs=args.runs, warmup=args.warmup, threads=args.threads,
                                      log=lambda m: print(m, file=sys.stderr, flush=True))
        print_table(tables[size])
    if args.json is not None:
        from eval.files import atomic_write_json

        atomic_write_json(args.json, {str(size): table for size, table in tables.items()})
        print(f"json: {args.json}")


if __name__ == "__main__":
    main()
