"""``compare``: real (tiny) training, the shared calculator, resume, config changes, failures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from detect.compare import compare
from detect.compare_rows import curve_json
from eval.report_schema import load_metrics
from eval.types import PRCurve

REPO = Path(__file__).resolve().parents[2]
TINY = {  # a few iterations: enough to exercise every path, not to learn
    "train": {"iterations": 4, "batch_size": 4, "warmup_iterations": 1, "checkpoint_every": 2, "log_every": 2},
}


def _tiny(tmp_path: Path, name: str, rung: str, extra: str = "") -> Path:
    """A config file NAME.yaml: configs/base.yaml, the given rung and a tiny schedule."""
    import yaml

    path = tmp_path / "configs" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    tree = {"_base_": str((REPO / "configs" / "base.yaml").resolve()), "model": {"rung": rung}, **TINY}
    path.write_text(yaml.safe_dump(tree) + extra)
    return path


@pytest.fixture(scope="module")
def finished(synth_root, tmp_path_factory):
    """One compare of two rungs on the 16 + 8 image dataset, shared by the tests below."""
    tmp = tmp_path_factory.mktemp("compare")
    configs = [_tiny(tmp, "faster", "faster_rcnn"), _tiny(tmp, "regress", "regression")]
    out = tmp / "out"
    metrics = compare(synth_root, configs, out, device="cpu", log=None)
    return tmp, configs, out, metrics


def test_metrics_json_and_report_are_written(finished, synth_root):
    _, configs, out, metrics = finished
    assert load_metrics(out / "metrics.json") == metrics  # the schema the report reads, round-tripped
    assert [v["name"] for v in metrics["variants"]] == ["faster", "regress"]
    assert all(v["status"] == "ok" for v in metrics["variants"])
    assert metrics["dataset"]["num_images"] == 8
    assert metrics["timing"]["torch threads"] == 1  # timing uses one thread unless told otherwise
    assert "load average at start" in metrics["machine"] and "load average at end" in metrics["machine"]
    assert metrics["dataset"]["class_names"] == ["circle", "square", "triangle", "star"]
    for v in metrics["variants"]:
        assert 0.0 <= v["mAP"] <= 1.0
        spi = v["seconds_per_image"]
        assert spi["network"] > 0 and spi["proposals"] >= 0 and spi["total"] >= spi["network"]
        assert spi["cpu"] > 0 and spi["wall_per_cpu"] > 0  # CPU time beside wall time
        assert v["train_seconds"] > 0
        assert set(v["per_class"]) == set(metrics["dataset"]["class_names"])
    assert metrics["settings"]["backbone"].startswith("tiny")
    assert metrics["settings"]["training iterations"] == 4
    assert len(metrics["examples"]) == 4
    for ex in metrics["examples"]:
        assert (out / ex["file"]).is_file()
    html = (out / "report.html").read_text()
    assert "faster" in html and "regress" in html and (out / "report.md").is_file()


def test_map_params_and_timing_come_from_the_trained_model(finished, synth_root):
    """Oracle: the same model.pt evaluated independently (batched) gives the same mAP."""
    from detect.data.voc import VOCDataset
    from detect.inference import load_detector, run_detector
    from eval.mean_ap import evaluate

    _, _, out, metrics = finished
    ds = VOCDataset(synth_root, "test")
    for v in metrics["variants"]:
        model, config, names = load_detector(out / v["name"] / "model.pt")
        dets, _ = run_detector(model, config, [ds[i][0] for i in range(len(ds))])
        gts = [{"boxes": a.boxes, "labels": a.labels, "difficult": a.difficult} for a in ds.annotations]
        expected = evaluate(gts, dets, names, "voc12", report_classes=names)
        assert v["mAP"] == pytest.approx(expected.mAP, abs=1e-6)
        assert v["params"] == sum(p.numel() for p in model.parameters())
    regress = metrics["variants"][1]
    assert all(len(d) <= 1 for d in regress["examples"].values())  # regression: one box per image


def test_rerun_keeps_finished_variants_and_retrains_a_changed_config(finished, synth_root):
    tmp, configs, out, metrics = finished
    stamp = {p: (out / p.stem / "model.pt").stat().st_mtime_ns for p in configs}
    again = compare(synth_root, configs, out, device="cpu", log=None)
    assert again["variants"] == metrics["variants"]
    assert {p: (out / p.stem / "model.pt").stat().st_mtime_ns for p in configs} == stamp
    # an edit to one config (here the seed) re-trains that variant only
    configs[1].write_text(configs[1].read_text() + "seed: 3\n")
    changed = compare(synth_root, configs, out, device="cpu", log=None)
    assert (out / "faster" / "model.pt").stat().st_mtime_ns == stamp[configs[0]]
    assert (out / "regress" / "model.pt").stat().st_mtime_ns != stamp[configs[1]]
    assert changed["variants"][0] == metrics["variants"][0]
    assert changed["settings"]["seed"].startswith("differs")


def test_a_failing_variant_does_not_sink_the_others(tmp_path, synth_root, cli):
    good = _tiny(tmp_path, "good", "regression")
    bad = _tiny(tmp_path, "broken", "regression", "model:\n  backbone:\n    name: no_such_backbone\n")
    out = tmp_path / "out"
    proc = cli("compare", "--data", synth_root, "--configs", bad, good, "--out", out, "--device", "cpu")
    assert proc.returncode == 1, proc.stderr
    metrics = load_metrics(out / "metrics.json")
    broken, ok = metrics["variants"]
    assert broken["status"] == "failed" and "no_such_backbone" in broken["error"] and broken["mAP"] is None
    assert ok["status"] == "ok" and ok["mAP"] is not None
    html = (out / "report.html").read_text()
    assert "<h2>Failures</h2>" in html and "no_such_backbone" in html
    assert "broken" in proc.stdout and "FAILED" in proc.stdout and "report.html" in proc.stdout


@pytest.mark.parametrize("args, message", [
    (["--configs", "nope.yaml"], "nope.yaml: config file not found"),
    (["--configs", "configs/ladder/faster_rcnn.yaml", "configs/ladder/faster_rcnn.yaml"], "also named"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, synth_root, cli, args, message):
    proc = cli("compare", "--data", synth_root, *args, "--out", tmp_path / "out")
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and message in proc.stderr


def test_missing_dataset_is_one_line_exit_2(tmp_path, cli):
    proc = cli("compare", "--data", tmp_path / "none", "--configs", "configs/ladder/faster_rcnn.yaml",
               "--out", tmp_path / "out")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "dataset root not found" in proc.stderr


def test_curves_are_thinned_keeping_both_ends():
    recall = np.linspace(0, 0.9, 1000)
    precision = np.linspace(1, 0.2, 1000)
    out = curve_json(PRCurve(precision=precision, recall=recall))
    assert len(out["recall"]) == len(out["precision"]) == 200
    assert out["recall"][0] == 0 and out["recall"][-1] == pytest.approx(0.9)
    assert out["precision"][-1] == pytest.approx(0.2)
    assert curve_json(PRCurve(precision=np.ones(3), recall=np.arange(3) / 3))["recall"] == [0, 0.33333, 0.66667]


def test_compare_killed_mid_training_resumes_that_run(tmp_path, synth_root, monkeypatch):
    import detect.train

    real_train = detect.train.train
    calls = []

    def killed(config, out_dir, **kwargs):
        calls.append(kwargs["resume"])
        real_train(config, out_dir, **{**kwargs, "stop_at": 2})  # checkpoint at iteration 2, no model.pt
        raise KeyboardInterrupt

    def recorded(config, out_dir, **kwargs):
        calls.append(kwargs["resume"])
        return real_train(config, out_dir, **kwargs)

    configs = [_tiny(tmp_path, "first", "regression"), _tiny(tmp_path, "second", "regression", "seed: 1\n")]
    out = tmp_path / "out"
    compare(synth_root, configs[:1], out, device="cpu", log=None)
    monkeypatch.setattr(detect.train, "train", killed)
    with pytest.raises(KeyboardInterrupt):
        compare(synth_root, configs, out, device="cpu", log=None)
    assert (out / "second" / "checkpoint.pt").is_file() and not (out / "second" / "model.pt").exists()
    monkeypatch.setattr(detect.train, "train", recorded)
    metrics = compare(synth_root, configs, out, device="cpu", log=None)
    assert calls == [False, True]  # "first" was not trained again; "second" resumed from its checkpoint
    assert [v["status"] for v in metrics["variants"]] == ["ok", "ok"]


def test_demo_compares_the_five_rungs_in_ladder_order(tmp_path):
    """The demo's wiring on a tiny dataset and schedule: five rows, ladder order, a report."""
    from detect.demo import LADDER, run_demo

    tiny = ["train.iterations=2", "train.batch_size=2", "train.warmup_iterations=1", "train.checkpoint_every=1"]
    metrics, compare_dir = run_demo(tmp_path / "demo", device="cpu", train_images=6, test_images=3,
                                    overrides=tiny, log=lambda message: None)
    assert [v["name"] for v in metrics["variants"]] == list(LADDER)
    assert all(v["status"] == "ok" for v in metrics["variants"]), [v["error"] for v in metrics["variants"]]
    assert metrics["dataset"]["num_images"] == 3
    assert [v["proposal_source"] for v in metrics["variants"]][2:] == [
        "Selective Search", "Selective Search", "RPN on shared features"]
    # Selective Search runs at test time and its seconds count as the proposal stage (not a cache read)
    for v in metrics["variants"][2:4]:
        assert v["seconds_per_image"]["proposals"] > 0.005
    assert (compare_dir / "report.html").is_file() and (compare_dir / "report.md").is_file()


def test_example_detections_keep_confident_boxes_and_always_the_best():
    from detect.compare_rows import example_detections

    dets = {"boxes": np.array([[0, 0, 5, 5], [1, 1, 9, 9], [2, 2, 4, 4]], float),
            "scores": np.array([0.2, 0.9, 0.5]), "labels": np.array([0, 2, 1])}
    names = ["a", "b", "c"]
    assert [(d["label"], d["score"]) for d in example_detections(dets, names)] == [("c", 0.9), ("b", 0.5)]
    weak = {**dets, "scores": np.array([0.2, 0.1, 0.05])}
    assert [(d["label"], d["box"]) for d in example_detections(weak, names)] == [("a", [0.0, 0.0, 5.0, 5.0])]
    empty = {"boxes": np.zeros((0, 4)), "scores": np.zeros(0), "labels": np.zeros(0, int)}
    assert example_detections(empty, names) == []


def test_ladder_rows_describe_what_each_rung_runs():
    from detect.compare_rows import describe_rung
    from detect.config import load_config

    ladder = REPO / "configs" / "ladder"
    fast = load_config(ladder / "fast_rcnn.yaml")
    assert describe_rung(fast) == ("Selective Search", "RoI max pooling on shared features → MLP head")
    faster = load_config(ladder / "faster_rcnn.yaml", ["model.roi_head.roi_op=roi_align"])
    assert describe_rung(faster) == ("RPN on shared features", "RoIAlign on shared features → MLP head")
    rcnn = load_config(ladder / "rcnn.yaml", ["model.crop.size=40"])
    assert describe_rung(rcnn)[1] == "40 px crop-and-warp → backbone → softmax head"


def test_jobs_train_variants_in_their_own_processes_with_the_same_results(synth_root, tmp_path):
    """``jobs=2``: two variants train at once, one process and one thread each; the rows equal a one-at-a-time run."""
    configs = [_tiny(tmp_path, "faster", "faster_rcnn"), _tiny(tmp_path, "regress", "regression")]
    one = compare(synth_root, configs, tmp_path / "one", device="cpu", log=None, threads=1)
    lines = []
    two = compare(synth_root, configs, tmp_path / "two", device="cpu", log=lines.append, threads=1, jobs=2)
    assert any("2 at a time" in line for line in lines)
    assert two["timing"]["training jobs"] == 2 and two["timing"]["training torch threads"] == 1
    for a, b in zip(one["variants"], two["variants"]):
        assert a["name"] == b["name"] and b["status"] == "ok"
        assert a["mAP"] == b["mAP"] and a["per_class"] == b["per_class"]  # same engine, same threads: same model
        assert b["train_seconds"] > 0
    assert not any("training (" in line for line in lines[lines.index(next(
        line for line in lines if line.startswith("[1/2]"))):])  # the measuring pass trains nothing again
