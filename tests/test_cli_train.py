"""``detladder train`` / ``detect`` / ``eval --config`` end to end, and ``torchrun`` data-parallel training."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
QUICK = ["--set", "train.iterations=3", "--set", "train.batch_size=4", "--set", "train.warmup_iterations=1",
         "--set", "test.score_thresh=0.0"]


def test_train_detect_eval_end_to_end(cli, synth_root, tmp_path):
    run = tmp_path / "run"
    done = cli("train", "--config", "configs/ladder/faster_rcnn.yaml", "--data", synth_root, "--out", run, *QUICK)
    assert done.returncode == 0, done.stderr
    assert "trained faster_rcnn for 3 iterations" in done.stdout
    assert sorted(p.name for p in run.iterdir()) == ["checkpoint.pt", "log.jsonl", "model.pt"]

    images = tmp_path / "images"
    shutil.copytree(synth_root / "JPEGImages", images)
    (images / "zz_corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    det = cli("detect", "--config", "configs/ladder/faster_rcnn.yaml", "--weights", run / "model.pt", images,
              "--out", tmp_path / "det")
    assert det.returncode == 1
    assert "zz_corrupt.jpg" in det.stderr and "Traceback" not in det.stderr
    records = json.loads((tmp_path / "det" / "detections.json").read_text())["images"]
    assert len(records) == len(list((synth_root / "JPEGImages").glob("*.jpg")))
    assert (tmp_path / "det" / "annotated" / "images" / "000000.jpg").is_file()

    out = tmp_path / "m.json"
    ev = cli("eval", "--config", "configs/ladder/faster_rcnn.yaml", "--weights", run / "model.pt", "--data", synth_root,
             "--split", "test", "--protocol", "voc12", "--json", out)
    assert ev.returncode == 0, ev.stderr
    metrics = json.loads(out.read_text())
    assert metrics["protocol"] == "voc12" and set(metrics["per_class"]) <= {"circle", "square", "triangle", "star"}
    assert (tmp_path / "m_voc" / "comp4_det_test_circle.txt").is_file() and (tmp_path / "m_coco.json").is_file()


class _Evil:
    """Unpickling this would run a shell command that creates ``marker``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_weights_one_line_exit_2(cli, synth_root, tmp_path):
    import torch

    marker = tmp_path / "ran"
    evil = tmp_path / "evil.pt"
    torch.save({"state_dict": _Evil(marker)}, evil)
    done = cli("detect", "--weights", evil, synth_root / "JPEGImages", "--out", tmp_path / "o")
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "refused" in done.stderr
    assert not marker.exists()


def test_torchrun_two_processes_gloo(synth_root, tmp_path):
    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists():
        pytest.skip("torchrun not installed next to this interpreter")
    run = tmp_path / "ddp"
    env = dict(os.environ, OMP_NUM_THREADS="1", DETLADDER_NO_PROGRESS="1")
    done = subprocess.run(
        [str(torchrun), "--standalone", "--nproc_per_node=2", "-m", "detect.cli", "train",
         "--config", "configs/ladder/faster_rcnn.yaml", "--data", str(synth_root), "--out", str(run), *QUICK,
         "--set", "train.checkpoint_every=2"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("trained faster_rcnn") == 1  # rank 1 neither prints nor writes
    assert sorted(p.name for p in run.iterdir()) == ["checkpoint.pt", "log.jsonl", "model.pt"]
    lines = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in lines] == [1, 2, 3]
