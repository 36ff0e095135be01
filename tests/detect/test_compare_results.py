"""``compare --results NAME=PATH``: any detector's result files as variants, with errors and breakdowns."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from detect.compare import compare
from eval.result_files import read_voc_ground_truth, write_voc_results
from eval.report_schema import load_metrics

REPO = Path(__file__).resolve().parents[2]


def _truth(root: Path):
    return read_voc_ground_truth(root, "test")


def _coco_results(path: Path, truth, image_id=None) -> Path:
    """Every test object detected exactly (COCO results JSON, category_id = class index + 1)."""
    rows = []
    for image, gt in zip(truth.image_ids, truth.gts):
        for (x1, y1, x2, y2), label in zip(gt["boxes"].tolist(), gt["labels"].tolist()):
            rows.append({"image_id": image_id or image, "category_id": label + 1,
                         "bbox": [x1, y1, x2 - x1, y2 - y1], "score": 0.9})
    path.write_text(json.dumps(rows))
    return path


def _shifted_folder(folder: Path, truth, split: str = "test") -> Path:
    """Every object found, but moved by 40% of its width: IoU below 0.5, so Loc errors."""
    dets = []
    for gt in truth.gts:
        boxes = gt["boxes"].copy()
        boxes[:, [0, 2]] += 0.4 * (boxes[:, 2] - boxes[:, 0])[:, None]
        dets.append({"boxes": boxes, "scores": np.full(len(boxes), 0.5), "labels": gt["labels"]})
    write_voc_results(folder, split, truth.image_ids, dets, truth.class_names)
    return folder


def test_results_only_compare_with_one_bad_variant(tmp_path, synth_root, cli):
    truth = _truth(synth_root)
    perfect = _coco_results(tmp_path / "perfect.json", truth)
    shifted = _shifted_folder(tmp_path / "shifted", truth)
    other = _shifted_folder(tmp_path / "other_split", truth, split="train")
    out = tmp_path / "out"
    proc = cli("compare", "--data", synth_root, "--results", f"perfect={perfect}", "--results", f"shifted={shifted}",
               "--results", f"other={other}", "--out", out)
    assert proc.returncode == 2, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("detladder: error: ") and str(other) in last and "split 'test'" in last
    metrics = load_metrics(out / "metrics.json")
    rows = {v["name"]: v for v in metrics["variants"]}
    assert list(rows) == ["perfect", "shifted", "other"]
    assert rows["other"]["status"] == "failed" and str(other) in rows["other"]["error"]
    good = rows["perfect"]
    assert good["status"] == "ok" and good["mAP"] == pytest.approx(1.0)
    assert good["seconds_per_image"] == {"proposals": None, "network": None, "total": None}
    assert good["params"] is None and good["train_seconds"] is None  # not measured
    assert all(v == 0 for v in good["errors"]["main"].values()) and good["errors"]["ap50"] == pytest.approx(1.0)
    assert good["breakdowns"]["corloc"]["value"] in (None, 1.0)
    assert good["curves"]["pooled"] is not None and set(good["per_class"]) == set(truth.class_names)
    bad = rows["shifted"]
    assert bad["mAP"] == pytest.approx(0.0)
    assert bad["errors"]["counts"]["Loc"] > 0 and bad["errors"]["main"]["Loc"] > 0.5
    assert (out / "report.html").is_file() and "shifted" in (out / "report.md").read_text()


def test_unknown_image_id_is_a_failed_row_naming_the_file(tmp_path, synth_root):
    truth = _truth(synth_root)
    wrong = _coco_results(tmp_path / "wrong.json", truth, image_id="no_such_image")
    right = _coco_results(tmp_path / "right.json", truth)
    metrics = compare(synth_root, [], tmp_path / "out", results=[("wrong", wrong), ("right", right)], log=None,
                      device="cpu")
    wrong_row, right_row = metrics["variants"]
    assert wrong_row["status"] == "failed" and str(wrong) in wrong_row["error"]
    assert "no_such_image" in wrong_row["error"] and right_row["mAP"] == pytest.approx(1.0)


def test_unknown_class_file_is_refused(tmp_path, synth_root):
    truth = _truth(synth_root)
    folder = _shifted_folder(tmp_path / "dets", truth)
    (folder / "comp4_det_test_unicorn.txt").write_text("")
    metrics = compare(synth_root, [], tmp_path / "out", results=[("x", folder)], log=None, device="cpu")
    assert "unknown class name 'unicorn'" in metrics["variants"][0]["error"]


@pytest.mark.parametrize("value, message", [("no_equals_sign", "NAME=PATH"), ("x=/no/such/file.json", "not found")])
def test_bad_results_option_is_one_line_exit_2(tmp_path, synth_root, cli, value, message):
    proc = cli("compare", "--data", synth_root, "--results", value, "--out", tmp_path / "out")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and message in proc.stderr
    assert not (tmp_path / "out" / "metrics.json").exists()  # refused before any work


def test_config_rows_carry_errors_and_breakdowns_beside_results(tmp_path, synth_root):
    import yaml

    config = tmp_path / "regress.yaml"
    config.write_text(yaml.safe_dump({"_base_": str(REPO / "configs" / "base.yaml"), "model": {"rung": "regression"},
                                      "train": {"iterations": 2, "batch_size": 2, "warmup_iterations": 1,
                                                "checkpoint_every": 2, "log_every": 1}}))
    perfect = _coco_results(tmp_path / "perfect.json", _truth(synth_root))
    metrics = compare(synth_root, [config], tmp_path / "out", results=[("perfect", perfect)], log=None,
                      device="cpu", warmup=0, examples=1)
    trained, external = metrics["variants"]
    assert trained["status"] == "ok" and external["rung"] == "external results"
    for row in (trained, external):
        assert set(row["errors"]["main"]) == {"Cls", "Loc", "Both", "Dupe", "Bkg", "Miss"}
        assert set(row["breakdowns"]["by_size"]) == {"small", "medium", "large"}
        assert set(row["breakdowns"]["by_count"]) == {"1", "2-3", "4+"}


def test_coco_results_with_numeric_image_ids_match_zero_padded_voc_ids(tmp_path, synth_root):
    truth = _truth(synth_root)
    rows = json.loads(_coco_results(tmp_path / "r.json", truth).read_text())
    assert rows[0]["image_id"].startswith("0")  # the synthetic ids are zero-padded numbers
    for r in rows:
        r["image_id"] = int(r["image_id"])  # as many COCO writers store them
    (tmp_path / "r.json").write_text(json.dumps(rows))
    metrics = compare(synth_root, [], tmp_path / "out", results=[("ints", tmp_path / "r.json")], log=None,
                      device="cpu")
    assert metrics["variants"][0]["status"] == "ok" and metrics["variants"][0]["mAP"] == pytest.approx(1.0)
