"""Images per second written by `detladder data synth` on one core (issue 2's target: >= 200 at 128 px).

    taskset -c 0 .venv/bin/python benchmarks/synth_speed.py [--images 500] [--image-size 128]

Times `make_synthetic_voc` end to end (rendering, JPEG encoding, XML, split files)
into a temporary directory, three times, and prints the median.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    import cv2

    cv2.setNumThreads(1)
    from detect.data.synth import make_synthetic_voc

    rates = []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            make_synthetic_voc(out, train=args.images, test=0, seed=1, image_size=args.image_size)
            rates.append(args.images / (time.perf_counter() - start))
    print(f"synth: {statistics.median(rates):.0f} images/s at {args.image_size} px on one core "
          f"(median of {args.repeat}: {', '.join(f'{r:.0f}' for r in rates)}; load {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
