"""Time `detladder report METRICS_JSON --out DIR` end to end (a fresh interpreter each run).

Target (issue 7): a 5-variant report re-renders in under 5 s. Default input:
the 5-variant fixture tests/data/report/metrics.json; pass the demo's
runs/demo/compare/metrics.json to time a real one.

    python benchmarks/report_speed.py [METRICS_JSON] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("metrics", nargs="?", default=str(REPO / "tests" / "data" / "report" / "metrics.json"))
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    seconds = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeat):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "detect.cli", "report", args.metrics, "--out", f"{tmp}/r{i}"],
                           check=True, capture_output=True, cwd=REPO)
            seconds.append(time.perf_counter() - start)
    print(f"detladder report {args.metrics}")
    print(f"  runs: {', '.join(f'{s:.2f}' for s in seconds)} s")
    print(f"  median {statistics.median(seconds):.2f} s, max {max(seconds):.2f} s (target < 5 s)")


if __name__ == "__main__":
    main()
