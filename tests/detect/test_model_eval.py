"""``evaluate_model``: result files beside the JSON, and the same numbers as ``eval --gt --dets``."""

import json

import numpy as np
import pytest

from detect.build import build_detector
from detect.config import config_to_dict, load_config
from detect.data.voc import VOCDataset
from detect.engine.checkpoint import model_payload, save_atomic
from detect.model_eval import detect_split, evaluate_detections, evaluate_model, result_paths
from eval.file_eval import evaluate_files
from eval.result_files import read_coco_results


@pytest.fixture(scope="module")
def model_file(tmp_path_factory, synth_root):
    cfg = load_config("configs/ladder/faster_rcnn.yaml", ["test.score_thresh=0.0", "test.detections_per_image=20"])
    names = list(VOCDataset(synth_root, "test").class_names)
    path = tmp_path_factory.mktemp("run") / "model.pt"
    save_atomic(model_payload(build_detector(cfg, len(names)).state_dict(), config_to_dict(cfg), names, "faster_rcnn"), path)
    return path


def test_evaluate_model_writes_results_and_matches_file_evaluation(model_file, synth_root, tmp_path):
    out = tmp_path / "m.json"
    result = evaluate_model(None, model_file, synth_root, "test", "voc12", out)
    voc_dir, coco_json = result_paths(out)
    assert sorted(p.name for p in voc_dir.iterdir()) == sorted(
        f"comp4_det_test_{c}.txt" for c in ("circle", "square", "triangle", "star"))
    written = json.loads(out.read_text())
    assert written == result.to_json()
    again = evaluate_files(synth_root, voc_dir, "voc12", "test")
    assert again.to_json() == written
    lines = sum(len(p.read_text().splitlines()) for p in voc_dir.iterdir())
    assert lines > 0
    voc = VOCDataset(synth_root, "test")
    coco = read_coco_results(coco_json, voc.image_ids, [1, 2, 3, 4])
    assert sum(len(d["scores"]) for d in coco) == lines


def test_in_memory_evaluation_equals_file_round_trip(model_file, synth_root, tmp_path):
    from detect.inference import load_detector

    model, cfg, _ = load_detector(model_file)
    voc = VOCDataset(synth_root, "test")
    dets, times = detect_split(model, cfg, voc)
    assert len(dets) == len(times) == len(voc)
    in_memory = evaluate_detections(voc, dets, "voc07")
    on_disk = evaluate_model(None, model_file, synth_root, "test", "voc07", tmp_path / "v.json")
    assert in_memory.mAP == pytest.approx(on_disk.mAP, abs=1e-12)
    assert np.isfinite(in_memory.mAP)
