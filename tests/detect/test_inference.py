"""Loading detectors safely and running them on images and folders."""

import json
import os
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from detect.build import build_detector
from detect.config import config_to_dict, load_config
from detect.data.voc import load_image
from detect.engine.checkpoint import model_payload, save_atomic
from detect.image_files import collect_images, detect_files
from detect.inference import load_detector, run_detector
from eval.errors import InputError

CLASSES = ["circle", "square", "triangle", "star"]


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    """An untrained tiny Faster R-CNN saved as a run's model.pt (random weights are enough here)."""
    cfg = load_config("configs/ladder/faster_rcnn.yaml", ["test.score_thresh=0.0", "seed=3"])
    model = build_detector(cfg, len(CLASSES))
    path = tmp_path_factory.mktemp("run") / "model.pt"
    save_atomic(model_payload(model.state_dict(), config_to_dict(cfg), CLASSES, "faster_rcnn"), path)
    return path


def test_load_detector_round_trip(model_file):
    model, cfg, names = load_detector(model_file)
    assert names == CLASSES and cfg.seed == 3 and not model.training
    reference = build_detector(cfg, 4)
    for key, value in reference.state_dict().items():
        assert torch.equal(model.state_dict()[key], value)
    _, cfg2, _ = load_detector(model_file, overrides=["test.score_thresh=0.5"])
    assert cfg2.test.score_thresh == 0.5


def test_run_detector_outputs_and_times(model_file, synth_root):
    model, cfg, _ = load_detector(model_file)
    images = [load_image(p) for p in sorted((synth_root / "JPEGImages").glob("*.jpg"))[:3]]
    dets, times = run_detector(model, cfg, images)
    assert len(dets) == len(times) == 3
    for det in dets:
        assert det["boxes"].dtype == np.float64 and det["boxes"].shape[1] == 4
        assert len(det["scores"]) == len(det["labels"]) > 0
        assert det["labels"].min() >= 0 and det["labels"].max() < 4  # 0-based class indices
        assert (det["boxes"] >= -1e-4).all() and (det["boxes"] <= 128 + 1e-4).all()
    assert all(t.network > 0 and t.proposals > 0 for t in times)
    model.train()
    with pytest.raises(ValueError, match="eval mode"):
        run_detector(model, cfg, images)


class _Payload:
    """Unpickling this runs code: it would create the marker file."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_checkpoint_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "model.pt"
    torch.save({"state_dict": {}, "config": _Payload(str(marker))}, path)
    with pytest.raises(InputError) as info:
        load_detector(path)
    assert "refused" in str(info.value) and str(path) in str(info.value) and "\n" not in str(info.value)
    assert not marker.exists()
    raw = tmp_path / "raw.pkl"
    raw.write_bytes(pickle.dumps(_Payload(str(marker))))
    with pytest.raises(InputError, match="refused"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns about the pickle protocol before refusing
        load_detector(raw)
    assert not marker.exists()


def test_bad_weights_files(tmp_path, model_file):
    with pytest.raises(InputError, match="not found"):
        load_detector(tmp_path / "missing.pt")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(InputError, match="refused"):
        load_detector(garbage)
    with pytest.raises(InputError, match="do not fit"):  # another width than the weights were saved with
        load_detector(model_file, overrides=["model.backbone.width=16"])


def test_raw_state_dict_needs_config_with_classes(tmp_path, model_file):
    state = torch.load(model_file, weights_only=True)["state_dict"]
    raw = tmp_path / "raw.pt"
    torch.save(state, raw)
    with pytest.raises(InputError, match="--config"):
        load_detector(raw)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"_base_: {Path('configs/ladder/faster_rcnn.yaml').resolve()}\nseed: 3\nclasses: [a, b, c, d]\n")
    model, _, names = load_detector(raw, cfg)
    assert names == ["a", "b", "c", "d"]


def test_collect_images_recurses_and_disambiguates(tmp_path):
    (tmp_path / "a" / "deep").mkdir(parents=True)
    for rel in ("a/x.jpg", "a/deep/y.PNG", "a/notes.txt", "a/z.webp", "b.bmp"):
        (tmp_path / rel).write_bytes(b"")
    got = collect_images([tmp_path / "a", tmp_path / "b.bmp", tmp_path / "a" / "x.jpg"])
    assert [str(rel) for _, rel in got] == ["a/deep/y.PNG", "a/x.jpg", "a/z.webp", "b.bmp", "x.jpg"]
    dup = collect_images([tmp_path / "a" / "x.jpg", tmp_path / "a" / "x.jpg"])
    assert [str(rel) for _, rel in dup] == ["x.jpg", "x_1.jpg"]
    with pytest.raises(InputError, match="no such file"):
        collect_images([tmp_path / "nope"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no images"):
        collect_images([tmp_path / "empty"])


def test_detect_files_writes_json_and_survives_a_corrupt_image(tmp_path, model_file, synth_root):
    folder = tmp_path / "imgs"
    (folder / "sub").mkdir(parents=True)
    sources = sorted((synth_root / "JPEGImages").glob("*.jpg"))[:3]
    for src in sources[:2]:
        (folder / "sub" / src.name).write_bytes(src.read_bytes())
    (folder / "broken.jpg").write_bytes(sources[2].read_bytes()[:200])
    notes = []
    result = detect_files([folder], tmp_path / "out", model_file, score_thresh=0.2, say=notes.append)
    assert result.images == 2 and len(result.failed) == 1 and "broken.jpg" in result.failed[0]
    assert notes == result.failed
    payload = json.loads((tmp_path / "out" / "detections.json").read_text())
    assert [Path(r["file"]).name for r in payload["images"]] == [s.name for s in sources[:2]]
    for record in payload["images"]:
        assert set(record) == {"file", "width", "height", "detections"}
        assert (record["width"], record["height"]) == (128, 128)
        for det in record["detections"]:
            assert set(det) == {"label", "score", "box"} and det["label"] in CLASSES
            assert det["score"] >= 0.2 and len(det["box"]) == 4
    for src in sources[:2]:
        annotated = load_image(tmp_path / "out" / "annotated" / "imgs" / "sub" / src.name)
        assert annotated.shape == (128, 128, 3)
