"""Selective Search side by side: ours vs OpenCV-contrib's C++ (fast mode) vs the `selectivesearch` package.

One run, same images, single-threaded, interleaved image by image (so machine
load drifts hit every method alike). Prints per image set: recall@0.5 and
@0.7 with all boxes, MABO, mean boxes per image and median seconds per image.

OpenCV-contrib conflicts with the runtime's opencv, so the two reference
methods run in a helper process from their own virtual environment
(git-ignored), which this script makes on first use (needs the package index
once); by hand that is:

    python -m venv benchmarks/.venv-opencv
    benchmarks/.venv-opencv/bin/pip install opencv-contrib-python-headless selectivesearch scikit-image

Run:  .venv/bin/python benchmarks/proposals_speed.py [--synth 40] [--repeat 3]

Images: scikit-image's bundled photos astronaut, chelsea, coffee, rocket, with
the hand-drawn boxes in PHOTO_BOXES below (approximate, drawn once by eye on a
50 px grid; the same boxes serve every method), and the test split of a
synthetic dataset written by ``detect.data.synth``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
OPENCV_PYTHON = REPO / "benchmarks" / ".venv-opencv" / "bin" / "python"

#: Hand-drawn object boxes [x1, y1, x2, y2] (0-based, x2/y2 exclusive) on the skimage photos.
PHOTO_BOXES = {
    "astronaut": [(20, 15, 365, 512), (150, 15, 300, 150), (275, 345, 505, 512), (0, 0, 100, 400),
                  (355, 0, 470, 285), (133, 348, 212, 422), (278, 340, 330, 372)],
    "chelsea": [(0, 0, 420, 300), (138, 85, 205, 148), (298, 110, 345, 163), (240, 220, 295, 265)],
    "coffee": [(172, 18, 410, 300), (75, 70, 480, 385), (325, 65, 425, 325), (205, 95, 375, 192)],
    "rocket": [(303, 125, 340, 410), (0, 0, 88, 400), (557, 0, 640, 427), (170, 125, 208, 410),
               (437, 122, 478, 427), (265, 400, 380, 427)],
}

# ---------------------------------------------------------------- helper process (other venv)
WORKER = r'''
import json, sys, time, warnings, numpy as np, cv2
warnings.filterwarnings("ignore")
cv2.setNumThreads(1)
images = {}
def load(spec):
    if spec.startswith("skimage:"):
        import skimage.data
        return getattr(skimage.data, spec.split(":", 1)[1])()
    return cv2.cvtColor(cv2.imread(spec, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
def opencv(img):
    ss = cv2.ximgproc.segmentation.createSelectiveSearchSegmentation()
    ss.setBaseImage(cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    ss.switchToSelectiveSearchFast()
    r = ss.process().astype(np.float64).reshape(-1, 4)          # (x, y, w, h), ranked
    return np.stack([r[:, 0], r[:, 1], r[:, 0] + r[:, 2], r[:, 1] + r[:, 3]], 1)
def pyss(img):
    import selectivesearch
    _, regions = selectivesearch.selective_search(img, scale=500, sigma=0.9, min_size=10)
    r = np.array([reg["rect"] for reg in regions], np.float64).reshape(-1, 4)
    # rect = (min_x, min_y, max_x - min_x, max_y - min_y) over inclusive pixel indices
    b = np.stack([r[:, 0], r[:, 1], r[:, 0] + r[:, 2] + 1, r[:, 1] + r[:, 3] + 1], 1)
    _, first = np.unique(b, axis=0, return_index=True)
    return b[np.sort(first)]
for line in sys.stdin:
    method, spec, out = line.split("\t")
    img = images.get(spec)
    if img is None:
        img = images[spec] = load(spec)
    t, c = time.perf_counter(), time.process_time()
    boxes = opencv(img) if method == "opencv" else pyss(img)
    dt, dc = time.perf_counter() - t, time.process_time() - c
    np.save(out.strip(), boxes)
    print(json.dumps({"seconds": dt, "cpu": dc}), flush=True)
'''


def _make_reference_venv() -> None:
    venv = OPENCV_PYTHON.parents[1]
    print(f"creating {venv} (opencv-contrib-python-headless, selectivesearch)", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(OPENCV_PYTHON), "-m", "pip", "install", "--quiet", "opencv-contrib-python-headless",
                    "selectivesearch", "scikit-image"], check=True)


class Reference:
    """The helper process: send (method, image spec), get (boxes, seconds)."""

    def __init__(self, tmp: Path):
        if not OPENCV_PYTHON.exists():
            _make_reference_venv()
        env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
        self.proc = subprocess.Popen([str(OPENCV_PYTHON), "-c", WORKER], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=env)
        self.tmp, self.n = tmp, 0

    def __call__(self, method: str, spec: str) -> tuple[np.ndarray, float, float]:
        self.n += 1
        out = self.tmp / f"ref{self.n}.npy"
        self.proc.stdin.write(f"{method}\t{spec}\t{out}\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            sys.exit(f"reference helper died while running {method} on {spec}")
        res = json.loads(line)
        return np.load(out), res["seconds"], res["cpu"]

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


def _image_sets(args, tmp: Path):
    """{set name: [(spec, rgb image, gt boxes (G, 4), difficult (G,))]}."""
    import skimage.data

    photos = []
    for name, boxes in PHOTO_BOXES.items():
        photos.append((f"skimage:{name}", getattr(skimage.data, name)(),
                       np.array(boxes, np.float64), np.zeros(len(boxes), bool)))
    sets = {"photos": photos}
    if args.synth:
        from detect.data.synth import make_synthetic_voc
        from detect.data.voc import VOCDataset, load_image

        root = make_synthetic_voc(tmp / "synth", train=0, test=args.synth, seed=1, image_size=args.synth_size)
        ds = VOCDataset(root, "test")
        sets[f"synthetic {args.synth_size}px"] = [
            (str(ds.image_path(i)), load_image(ds.image_path(i)), a.boxes, a.difficult)
            for i, a in enumerate(ds.annotations)
        ]
    return sets


def _ours(image, params):
    from proposals.selective_search import selective_search

    t, c = time.perf_counter(), time.process_time()
    boxes = selective_search(image, **params)
    return boxes, time.perf_counter() - t, time.process_time() - c


def _felzenszwalb_only(image, params):
    """scikit-image's felzenszwalb for every (colour space, k) of the mode, no boxes.

    What the four segmentations cost through scikit-image, one call each, for
    comparison with ours (proposals/felzenszwalb.py: same labels, one edge sort
    per colour space).
    """
    from skimage.segmentation import felzenszwalb

    from proposals.selective_search import MODES, _resize_for_segmentation
    from proposals.ss_features import convert_colour_space

    mode = {**MODES[params.get("mode", "fast")], **params}
    image, _ = _resize_for_segmentation(image, params.get("max_side"))
    spaces = [convert_colour_space(image, s).astype(np.float64) for s in mode["colour_spaces"]]
    t, c = time.perf_counter(), time.process_time()
    for space in spaces:
        for k in mode["ks"]:
            felzenszwalb(space, scale=k, sigma=0.8, min_size=k)
    return np.zeros((0, 4)), time.perf_counter() - t, time.process_time() - c


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--synth", type=int, default=40, help="synthetic test images (0 = none)")
    ap.add_argument("--synth-size", type=int, default=128)
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per image and method (median)")
    ap.add_argument("--no-pyss", action="store_true", help="skip the slow pure-Python package")
    ap.add_argument("--params", default="{}", help="JSON keyword arguments for our selective_search")
    args = ap.parse_args()
    params = {"mode": "fast", **json.loads(args.params)}

    import cv2

    cv2.setNumThreads(1)
    from eval.proposal_recall import proposal_recall

    methods = ["ours", "opencv"] + ([] if args.no_pyss else ["selectivesearch"]) + ["felzenszwalb only"]
    print(f"ours = proposals.selective_search({params}); repeats = {args.repeat}; "
          f"load average at start: {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        ref = Reference(tmp)
        for set_name, items in _image_sets(args, tmp).items():
            boxes = {m: [] for m in methods}
            times = {m: [] for m in methods}
            cpu = {m: [] for m in methods}
            for spec, image, _, _ in items:
                for m in methods:
                    reps = 1 if m == "selectivesearch" else args.repeat
                    run = {"ours": _ours, "felzenszwalb only": _felzenszwalb_only}.get(m)
                    runs = [(run(image, params) if run else ref(m, spec)) for _ in range(reps)]
                    boxes[m].append(runs[0][0])
                    times[m].append(float(np.median([r[1] for r in runs])))
                    cpu[m].append(float(np.median([r[2] for r in runs])))
            # Ours ranked, cut to 1.5x OpenCV's box count on the same image.
            boxes["ours top 1.5x"] = [b[: int(1.5 * len(o))] for b, o in zip(boxes["ours"], boxes["opencv"])]
            times["ours top 1.5x"], cpu["ours top 1.5x"] = times["ours"], cpu["ours"]
            rows = methods[:1] + ["ours top 1.5x"] + methods[1:]
            _report(set_name, items, rows, boxes, times, cpu, proposal_recall)
        ref.close()
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


def _report(set_name, items, methods, boxes, times, cpu, proposal_recall) -> None:
    gts = [it[2] for it in items]
    diff = [it[3] for it in items]
    labels = [np.zeros(len(g), np.int64) for g in gts]
    print(f"\n{set_name}: {len(items)} images, {sum(int((~d).sum()) for d in diff)} objects")
    print(f"{'method':<16}{'recall@0.5':>11}{'recall@0.7':>11}{'MABO':>7}{'boxes/img':>11}"
          f"{'median s/img':>14}{'median cpu s':>14}")
    for m in methods:
        if m == "felzenszwalb only":
            print(f"{'(scikit-image felzenszwalb, the 4 calls we replace)':<56}{np.median(times[m]):>14.3f}{np.median(cpu[m]):>14.3f}")
            continue
        res = proposal_recall(gts, labels, boxes[m], ("object",), top_ns=(None,), difficult=diff)
        print(f"{m:<16}{res.recall[0.5]['all']:>11.3f}{res.recall[0.7]['all']:>11.3f}{res.mabo:>7.3f}"
              f"{res.boxes_per_image:>11.0f}{np.median(times[m]):>14.3f}{np.median(cpu[m]):>14.3f}")
    timed = [m for m in methods if m not in ("ours top 1.5x", "felzenszwalb only")]
    per_image = "  ".join(
        f"{Path(it[0].split(':')[-1]).stem}: " + "/".join(f"{times[m][i]:.2f}" for m in timed)
        for i, it in enumerate(items[:6])
    )
    print(f"seconds per image ({'/'.join(timed)}): {per_image}{' ...' if len(items) > 6 else ''}")


if __name__ == "__main__":
    main()
