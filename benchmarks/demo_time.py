"""Time `detladder demo` end to end and show where the time goes.

Target (issue 7): <= 10 minutes wall on a 2-core CPU, Faster R-CNN mAP@0.5
(voc12) >= 0.85 in the demo's own report. Runs the console script in a fresh
output directory (deleted unless --keep), timestamps every progress line the
demo writes to stderr, then prints per-variant training seconds, mAP and
seconds/image from metrics.json.

    python benchmarks/demo_time.py [--out DIR] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="demo output directory (default: a fresh temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the output directory")
    args = parser.parse_args()
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="demo-time-"))
    if out.exists() and any(out.iterdir()):
        sys.exit(f"{out} is not empty: the benchmark times a demo from scratch")
    cmd = [sys.executable, "-m", "detect.cli", "demo", "--out", str(out)]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))
    for line in proc.stderr:
        print(f"[{time.perf_counter() - start:7.1f} s] {line.rstrip()}", flush=True)
    stdout = proc.stdout.read()
    code = proc.wait()
    wall = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(stdout.rstrip())
    print(f"\nexit code {code}; wall time {wall:.1f} s ({wall / 60:.2f} min; target <= 10 min)")
    print(f"CPU time of the demo process: {usage.ru_utime + usage.ru_stime:.1f} s (user + system); "
          f"load average now: {' / '.join(f'{v:.2f}' for v in os.getloadavg())} "
          "(other work on the machine inflates the wall time)")
    metrics_path = out / "compare" / "metrics.json"
    if metrics_path.is_file():
        metrics = json.loads(metrics_path.read_text())
        print(f"{'variant':<16}{'status':<8}{'mAP':>7}{'train s':>9}{'prop ms':>9}{'net ms':>9}")
        for v in metrics["variants"]:
            spi = v["seconds_per_image"]
            fmt = lambda x, k=1.0, d=1: "-" if x is None else f"{x * k:.{d}f}"  # noqa: E731
            print(f"{v['name']:<16}{v['status']:<8}{fmt(v['mAP'], d=3):>7}{fmt(v['train_seconds']):>9}"
                  f"{fmt(spi['proposals'], 1000):>9}{fmt(spi['network'], 1000):>9}")
    if not args.keep and not args.out:
        shutil.rmtree(out, ignore_errors=True)
    else:
        print(f"output kept in {out}")


if __name__ == "__main__":
    main()
