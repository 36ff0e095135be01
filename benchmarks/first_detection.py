"""The first detection on a photo: ``detladder detect`` against a minimal torchvision script, end to end.

    flock -x /tmp/detladder-bench.lock .venv/bin/python benchmarks/first_detection.py
        [--repeats 3] [--threads 1] [--cases one-warm one-cold folder-warm folder-cold] [--work DIR]

Each case runs two processes, alternating, ``--repeats`` times each, and reports
the median wall and CPU (user + sys) seconds of each and their ratio:

* ``detladder``: ``detladder detect --config configs/coco/faster_rcnn_r50_fpn.yaml --weights W
  PHOTOS --out O`` (writes detections.json and the annotated copies, as a user gets them);
* ``torchvision``: the script a user would write (written to ``WORK/tv_detect.py``): import
  torchvision, ``fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None)``,
  ``load_state_dict(torch.load(W, weights_only=True))``, read each photo with PIL, run the model
  (batches of ``--batch-size``, the config's ``test.batch_size``), write nothing.

Cases: one 512x512 photo, and a folder of 20 (per-image cost: the folder's median wall minus the
one photo's, over 19, i.e. what each photo after the first costs; and the folder's wall over 20).
"warm": each command has run before (the agreement check, or one untimed run after a cold case). "cold": before each run, every page of these files
is dropped from the page cache with ``posix_fadvise(POSIX_FADV_DONTNEED)`` (unprivileged; pages a
live process maps or has dirty are kept, so the resident share of the weights and of
libtorch_cpu.so after the drop is printed): the weights, the photos, every file in the venv's
site-packages (torch, torchvision, their CUDA libraries, PIL, numpy, OpenCV, typer, ...), the
Python standard library and this repository's detect/, eval/, proposals/ and configs/.
The Python interpreter binary and the system's shared libraries stay cached.

Threads: ``OMP_NUM_THREADS``/``MKL_NUM_THREADS`` = ``--threads`` (default 1) in both processes'
environments (0: leave torch's default for both). The load average is printed before and after.

The weights: no COCO checkpoint exists here and nothing is downloaded, so ``WORK/weights.pth`` is
made once: torchvision's COCO Faster R-CNN as its builder makes it for ``COCO_V1`` (ResNet-50 with
FrozenBatchNorm2d, 3 trainable stages, 91 classes), random init from seed 0, ``torch.save`` of its
state dict: the real file's keys, shapes and size (~160 MB). Timing does not depend on the values
(the detector keeps its top 100 boxes either way). The photos are skimage's bundled real photos
(astronaut, coffee, chelsea, rocket, immunohistochemistry, hubble_deep_field, retina), scaled so
the short side is 512 and cropped to 512x512 (the folder: crops at other places and mirrored ones).

Before timing, detladder and torchvision's model exactly as its builder makes it for the COCO_V1
weights (``tv_exact.py``: FrozenBatchNorm2d, eps 0) are run once on the folder and their detections
must agree (same label, box within 2 px, score within 0.01, for every detection of either side that
scores clearly above the other side's cut-off); the script stops otherwise. The user's script
(BatchNorm2d, eps 1e-5: not quite the COCO model) is compared the same way and the share of twins
printed: with random weights many scores are close, so that eps moves a few boxes across NMS.
Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "coco" / "faster_rcnn_r50_fpn.yaml"
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field", "retina")
CASES = ("one-warm", "folder-warm", "one-cold", "folder-cold")

TV_SCRIPT = '''"""A minimal torchvision script: Faster R-CNN from a state dict, photos in (PIL), detections out."""
import sys

import torch
import torchvision
from PIL import Image
from torchvision.transforms.functional import pil_to_tensor

weights, batch, dump, photos = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]
model = torchvision.models.detection.fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None)
model.load_state_dict(torch.load(weights, weights_only=True))
model.eval()
results = []
with torch.inference_mode():
    for start in range(0, len(photos), batch):
        images = [pil_to_tensor(Image.open(p).convert("RGB")).float() / 255 for p in photos[start:start + batch]]
        results += model(images)
if dump != "-":  # only the agreement check asks for the detections
    torch.save([{k: v.clone() for k, v in r.items()} for r in results], dump)
'''
_USER_BUILD = "model = torchvision.models.detection.fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None)\n"
#: The agreement check's twin: the model exactly as torchvision's builder makes it for its COCO_V1 weights
#: (FrozenBatchNorm2d, eps 0 by ``overwrite_eps``); the user's script above has BatchNorm2d (eps 1e-5) in eval
#: mode instead, the same arithmetic up to rounding and that eps.
TV_EXACT_SCRIPT = TV_SCRIPT.replace(_USER_BUILD, """from torchvision.models.detection._utils import overwrite_eps
from torchvision.ops.misc import FrozenBatchNorm2d
from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor
backbone = _resnet_fpn_extractor(torchvision.models.resnet50(norm_layer=FrozenBatchNorm2d), 3)
model = torchvision.models.detection.FasterRCNN(backbone, num_classes=91)
overwrite_eps(model, 0.0)
""")
assert TV_EXACT_SCRIPT != TV_SCRIPT


# --------------------------------------------------------------------------- inputs


def make_weights(path: Path) -> None:
    """torchvision's COCO Faster R-CNN layout (FrozenBatchNorm2d, 91 classes), seed 0, as a state dict file."""
    import torch
    from torchvision.models import resnet50
    from torchvision.models.detection import FasterRCNN
    from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor
    from torchvision.ops.misc import FrozenBatchNorm2d

    torch.manual_seed(0)
    model = FasterRCNN(_resnet_fpn_extractor(resnet50(norm_layer=FrozenBatchNorm2d), 3), num_classes=91)
    tmp = path.with_suffix(".tmp")
    torch.save(model.state_dict(), tmp)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    tmp.replace(path)


def make_photos(work: Path, count: int = 20) -> tuple[Path, Path]:
    """(one 512x512 photo, a folder of ``count`` 512x512 photos) from skimage's bundled photos."""
    import numpy as np
    import skimage.data
    from PIL import Image

    one, folder = work / "photo.jpg", work / "photos"
    folder.mkdir(exist_ok=True)
    crops = []
    for k in range(count):
        name = PHOTOS[k % len(PHOTOS)]
        img = Image.fromarray(np.asarray(getattr(skimage.data, name)())[:, :, :3])
        scale = 512 / min(img.size)
        img = img.resize((max(512, round(img.width * scale)), max(512, round(img.height * scale))), Image.BICUBIC)
        turn = k // len(PHOTOS)  # 0: centre, 1: top-left, 2: bottom-right and mirrored
        x = {0: (img.width - 512) // 2, 1: 0, 2: img.width - 512}[turn]
        y = {0: (img.height - 512) // 2, 1: 0, 2: img.height - 512}[turn]
        crop = img.crop((x, y, x + 512, y + 512))
        crops.append(crop.transpose(Image.FLIP_LEFT_RIGHT) if turn == 2 else crop)
    crops[0].save(one, quality=95)
    for k, crop in enumerate(crops):
        crop.save(folder / f"{k:02d}_{PHOTOS[k % len(PHOTOS)]}.jpg", quality=95)
    return one, folder


# --------------------------------------------------------------------------- cold cache


def cold_paths(work: Path) -> list[Path]:
    """What a cold run reads from disk again: see the module docstring."""
    site = Path(sysconfig.get_paths()["purelib"])
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    return [work, site, stdlib, *(ROOT / d for d in ("detect", "eval", "proposals", "configs"))]


def drop_cache(paths: list[Path]) -> int:
    """``posix_fadvise(DONTNEED)`` on every regular file under ``paths``; the number of files."""
    os.sync()  # dirty pages cannot be dropped
    count = 0
    for top in paths:
        for dirpath, _, files in os.walk(top):
            for name in files:
                try:
                    fd = os.open(os.path.join(dirpath, name), os.O_RDONLY | os.O_NOFOLLOW)
                except OSError:
                    continue
                try:
                    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                    count += 1
                finally:
                    os.close(fd)
    return count


def resident(path: Path) -> str:
    """The share of ``path`` in the page cache (util-linux ``fincore``), or '?'."""
    if shutil.which("fincore") is None or not path.is_file():
        return "?"
    out = subprocess.run(["fincore", "--bytes", "--noheadings", "--output", "RES", str(path)],
                         capture_output=True, text=True)
    try:
        return f"{100 * int(out.stdout.split()[0]) / path.stat().st_size:.0f}%"
    except (ValueError, IndexError):
        return "?"


# --------------------------------------------------------------------------- runs


def timed(cmd: list[str], env: dict) -> tuple[float, float]:
    """(wall, user + sys CPU seconds) of one process; stops the benchmark if it fails."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-3000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def matched(ours: list[list], theirs: list[list], floor: float, box_tol=2.0, score_tol=0.01) -> tuple[int, list[str]]:
    """(detections checked, those without a twin) of two sides' detections of the same photos.

    ``ours``/``theirs``: per image lists of (label name, score, box). Every detection of either side
    that scores clearly above the other side's cut-off needs a twin there: same label, box within
    ``box_tol`` px, score within ``score_tol``. The cut-off of a side is the lowest score it kept when
    it kept 100 boxes (else the score threshold ``floor``); a detection within 0.02 of it may fall
    on either side of it, so it is not required.
    """
    checked, missing = 0, []
    for a_side, b_side, who in ((ours, theirs, "detladder"), (theirs, ours, "torchvision")):
        for k, (a, b) in enumerate(zip(a_side, b_side)):
            cut = max(floor, min((s for _, s, _ in b), default=floor) if len(b) >= 100 else floor)
            for label, score, box in a:
                if score < cut + 0.02:
                    continue
                checked += 1
                if not any(lb == label and abs(sb - score) <= score_tol and
                           max(abs(u - v) for u, v in zip(bb, box)) <= box_tol for lb, sb, bb in b):
                    missing.append(f"photo {k}: {who}'s {label} {score:.3f} {[round(v, 1) for v in box]}")
    return checked, missing


def check_agreement(detladder_cmd, tv_cmd, env, out: Path, work: Path, photos: list[Path]) -> None:
    """Run both on the folder; detladder must match torchvision's exact COCO build (else stop), and the
    user's script (BatchNorm eps 1e-5) is reported as the share of detections with a twin."""
    import torch
    import yaml

    config = yaml.safe_load(CONFIG.read_text())
    names, floor = config["classes"], config["test"]["score_thresh"]
    shutil.rmtree(out, ignore_errors=True)
    timed(detladder_cmd, env)
    by_file = {r["file"]: r["detections"] for r in json.loads((out / "detections.json").read_text())["images"]}
    ours = [[(d["label"], d["score"], d["box"]) for d in by_file[str(p)]] for p in photos]
    for script in ("tv_exact.py", "tv_detect.py"):
        dump = work / "tv_detections.pt"
        timed(tv_cmd(work / script, str(dump)), env)
        theirs = [[(names[int(lab) - 1], float(s), [float(v) for v in b])
                   for b, s, lab in zip(r["boxes"].tolist(), r["scores"].tolist(), r["labels"].tolist())]
                  for r in torch.load(dump, weights_only=True)]
        checked, missing = matched(ours, theirs, floor)
        print(f"agreement with {script}: {checked - len(missing)} of {checked} detections on {len(photos)} photos "
              "have a twin (label, box within 2 px, score within 0.01)" + (f"; first without: {missing[0]}"
                                                                            if missing else ""))
        if script == "tv_exact.py" and (missing or checked == 0):
            raise SystemExit("detladder's detections differ from torchvision's COCO model: stopped")


def run_case(sides: dict, repeats: int, cold: list[Path] | None, out: Path, weights: Path, warm_up: bool) -> dict:
    """Median (wall, cpu) of each side, alternating; ``cold``: drop these files' pages before each run;
    ``warm_up``: run each command once first (not needed right after the agreement check or a warm case)."""
    times: dict[str, list[tuple[float, float]]] = {side: [] for side in sides}
    notes = []
    if cold is None and warm_up:  # warm: each command has run before the first timed run
        for cmd, env in sides.values():
            shutil.rmtree(out, ignore_errors=True)
            timed(cmd, env)
    for _ in range(repeats):
        for side, (cmd, env) in sides.items():
            shutil.rmtree(out, ignore_errors=True)
            if cold is not None:
                drop_cache(cold)
                notes.append(f"{resident(weights)}/{resident(_libtorch())}")
            times[side].append(timed(cmd, env))
    result = {side: (statistics.median(w for w, _ in t), statistics.median(c for _, c in t), t)
              for side, t in times.items()}
    if notes:
        result["resident_after_drop"] = notes
    return result


def _libtorch() -> Path:
    return Path(sysconfig.get_paths()["purelib"]) / "torch" / "lib" / "libtorch_cpu.so"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="OMP/MKL threads in both processes (0: default)")
    parser.add_argument("--batch-size", type=int, default=2, help="both sides (the config's test.batch_size)")
    parser.add_argument("--cases", nargs="*", choices=CASES, default=list(CASES))
    parser.add_argument("--skip-agreement", action="store_true", help="time only (e.g. an older tree)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/detladder-first-detection"))
    parser.add_argument("--detladder", default=str(Path(sys.executable).with_name("detladder")),
                        help="the detladder console script")
    args = parser.parse_args()
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    weights, tv_script, out = work / "weights.pth", work / "tv_detect.py", work / "out"
    if not weights.is_file():
        make_weights(weights)
    one, folder = make_photos(work)
    tv_script.write_text(TV_SCRIPT)
    (work / "tv_exact.py").write_text(TV_EXACT_SCRIPT)
    photos = sorted(folder.glob("*.jpg"))
    env = dict(os.environ)
    if args.threads:
        env.update(OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))

    def dl(inputs):
        return [args.detladder, "detect", "--config", str(CONFIG), "--weights", str(weights), *inputs,
                "--out", str(out), "--batch-size", str(args.batch_size)]

    def tv(inputs, dump="-", script=tv_script):
        return [sys.executable, str(script), str(weights), str(args.batch_size), dump, *inputs]

    print(f"load average before: {os.getloadavg()}; threads: {args.threads or 'torch default'}; "
          f"repeats: {args.repeats}; batch size {args.batch_size}", flush=True)
    if not args.skip_agreement:
        check_agreement(dl([str(folder)]), lambda script, dump: tv([str(p) for p in photos], dump, script), env, out,
                        work, photos)
    results = {}
    warm_up = args.skip_agreement
    for case in [c for c in CASES if c in args.cases]:
        inputs = [str(one)] if case.startswith("one") else [str(folder)]
        tv_inputs = [str(one)] if case.startswith("one") else [str(p) for p in photos]
        sides = {"detladder": (dl(inputs), env), "torchvision": (tv(tv_inputs), env)}
        cold = cold_paths(work) if case.endswith("cold") else None
        results[case] = run_case(sides, args.repeats, cold, out, weights, warm_up)
        warm_up = cold is not None
        d, t = results[case]["detladder"], results[case]["torchvision"]
        print(f"{case:12s} detladder {d[0]:6.2f} s wall {d[1]:6.2f} s cpu | torchvision {t[0]:6.2f} s wall "
              f"{t[1]:6.2f} s cpu | ratio wall {d[0] / t[0]:.2f}x cpu {d[1] / t[1]:.2f}x   "
              f"(runs {[round(w, 2) for w, _ in d[2]]} / {[round(w, 2) for w, _ in t[2]]})"
              + (f" resident weights/libtorch after drop: {results[case]['resident_after_drop']}"
                 if "resident_after_drop" in results[case] else ""), flush=True)
    for temp in ("warm", "cold"):
        one_r, many = results.get(f"one-{temp}"), results.get(f"folder-{temp}")
        if one_r and many:
            n = len(photos)
            per = {s: (many[s][0] - one_r[s][0]) / (n - 1) for s in ("detladder", "torchvision")}
            print(f"per image ({temp}): each photo after the first {per['detladder']:.2f} s against "
                  f"{per['torchvision']:.2f} s ({per['detladder'] / per['torchvision']:.2f}x); folder wall / {n}: "
                  f"{many['detladder'][0] / n:.2f} s against {many['torchvision'][0] / n:.2f} s")
    print(f"load average after: {os.getloadavg()}")
    (work / "results.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
