"""Fingerprints of the five ladder configs: the same losses and detections as before the parts redesign.

Each configs/ladder/*.yaml (plus R-CNN with its SVM stage) trains three iterations
with the training engine on a tiny synthetic set, then detects two test images.
The expected numbers were recorded on the code before issue 12's redesign (CPU, one
thread): a refactor that changes what a rung computes changes them. Tolerances
allow for float summation order only.
"""

from __future__ import annotations

import pytest
import torch

from detect.config import load_config
from detect.data.voc import VOCDataset
from detect.inference import load_detector, run_detector
from detect.train import train
from tests.detect.ladder_util import LADDER

# Small: a narrow backbone, two images per batch, three iterations, no score threshold
# (so the barely trained heads still emit detections to compare).
SMALL = ["model.backbone.width=8", "train.batch_size=2", "train.iterations=3", "train.warmup_iterations=1",
         "train.checkpoint_every=100", "test.score_thresh=0.0", "test.batch_size=2",
         # the recorded numbers predate NHWC training; NHWC equals NCHW to float rounding per step
         # (tests/detect/test_precision.py), which three steps of sampling amplify beyond these tolerances
         "train.channels_last=false", "train.cpu_amp=false"]
VARIANTS = {
    "regression": ("regression", []),
    # the regression head before issue 13 (global average pooling, smooth-L1, whole images, 128 px): the new
    # options' defaults, which model.pt files written before it load with, must still compute the same
    "regression_global_average": ("regression", [
        "model.global_pool.pool_size=1", "model.global_pool.conv_channels=0", "model.global_pool.class_pool=shared",
        "model.global_pool.box_loss=smooth_l1", "model.global_pool.train_view=image", "data.image_size=128",
        "data.max_size=128", "train.lr=0.001"]),
    "sliding_window": ("sliding_window", []),
    "rcnn": ("rcnn", []),
    "rcnn_svm": ("rcnn", ["model.crop.head=svm", "model.crop.svm_images=4"]),
    "fast_rcnn": ("fast_rcnn", []),
    "faster_rcnn": ("faster_rcnn", []),
}
TOP = 4  # detections compared per image (in the order the model returns them)


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    from detect.data.synth import make_synthetic_voc

    return make_synthetic_voc(tmp_path_factory.mktemp("parity"), train=4, test=2, seed=3, image_size=64)


@pytest.fixture
def one_thread():
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


def fingerprint(name: str, root, out_dir) -> dict:
    """Losses of each iteration and the first detections on the test images of one ladder variant."""
    rung, extra = VARIANTS[name]
    config = load_config(LADDER / f"{rung}.yaml", SMALL + extra)
    result = train(config, out_dir, data_root=root)
    from detect.engine.runlog import read_log

    losses = [{k: round(v, 6) for k, v in r.items() if k.startswith("loss")} for r in read_log(out_dir / "log.jsonl")
              if "loss" in r]
    model, cfg, _ = load_detector(result.model_path)
    voc = VOCDataset(root, "test", class_names=cfg.classes)
    dets, _ = run_detector(model, cfg, [voc[i][0] for i in range(len(voc))])
    shown = [{"boxes": [[round(float(v), 3) for v in b] for b in d["boxes"][:TOP]],
              "scores": [round(float(s), 5) for s in d["scores"][:TOP]],
              "labels": [int(c) for c in d["labels"][:TOP]]} for d in dets]
    return {"losses": losses, "detections": shown}


@pytest.mark.parametrize("name", list(VARIANTS))
def test_ladder_config_gives_the_recorded_numbers(name, tiny_root, tmp_path, one_thread):
    got = fingerprint(name, tiny_root, tmp_path / name)
    want = EXPECTED[name]
    assert len(got["losses"]) == len(want["losses"])
    for g, w in zip(got["losses"], want["losses"]):
        assert g.keys() == w.keys()
        assert g == pytest.approx(w, rel=2e-4, abs=1e-5)
    for g, w in zip(got["detections"], want["detections"]):
        assert g["labels"] == w["labels"]
        assert g["scores"] == pytest.approx(w["scores"], abs=2e-4)
        for gb, wb in zip(g["boxes"], w["boxes"]):
            assert gb == pytest.approx(wb, abs=2e-2)


# Recorded on commit 83ffe90 (before the parts redesign) with the loop above (regression: see below).
EXPECTED: dict = {'fast_rcnn': {'detections': [{'boxes': [[57.083, 13.952, 64.0, 33.931], [52.143, 24.966, 64.0, 38.954],
                                         [40.283, 0.0, 64.0, 8.971], [41.274, 4.965, 64.0, 18.955]],
                               'labels': [0, 0, 0, 0],
                               'scores': [0.21944, 0.21939, 0.21939, 0.21929]},
                              {'boxes': [[44.214, 18.975, 62.154, 28.967], [49.167, 6.96, 63.118, 21.951],
                                         [42.251, 5.944, 63.177, 27.927], [49.179, 6.899, 64.0, 46.869]],
                               'labels': [0, 0, 0, 0],
                               'scores': [0.21947, 0.21943, 0.21942, 0.21934]}],
               'losses': [{'loss': 2.137294, 'loss_box_reg': 0.575276, 'loss_classifier': 1.562019},
                          {'loss': 2.086651, 'loss_box_reg': 0.485158, 'loss_classifier': 1.601493},
                          {'loss': 1.407954, 'loss_box_reg': 0.526143, 'loss_classifier': 0.881811}]},
 'faster_rcnn': {'detections': [{'boxes': [[52.063, 51.956, 63.844, 63.794], [44.573, 0.0, 63.732, 5.406],
                                           [48.546, 37.471, 63.798, 63.547], [40.588, 54.492, 63.204, 63.838]],
                                 'labels': [0, 0, 0, 0],
                                 'scores': [0.20945, 0.2094, 0.2094, 0.20937]},
                                {'boxes': [[48.081, 0.0, 63.788, 15.737], [48.559, 0.0, 63.79, 5.405],
                                           [20.587, 0.0, 43.193, 5.407], [0.045, 0.0, 11.906, 15.743]],
                                 'labels': [0, 0, 0, 0],
                                 'scores': [0.20942, 0.20938, 0.20934, 0.20933]}],
                 'losses': [{'loss': 2.739616,
                             'loss_box_reg': 0.415759,
                             'loss_classifier': 1.625104,
                             'loss_objectness': 0.69336,
                             'loss_rpn_box_reg': 0.005393},
                            {'loss': 2.467597,
                             'loss_box_reg': 0.127688,
                             'loss_classifier': 1.639153,
                             'loss_objectness': 0.693249,
                             'loss_rpn_box_reg': 0.007508},
                            {'loss': 1.999239,
                             'loss_box_reg': 0.32998,
                             'loss_classifier': 0.973625,
                             'loss_objectness': 0.687569,
                             'loss_rpn_box_reg': 0.008064}]},
 'rcnn': {'detections': [{'boxes': [[0.312, 20.94, 25.04, 64.0], [24.225, 32.985, 42.029, 43.008],
                                    [52.15, 24.98, 64.0, 39.011], [30.325, 36.96, 56.043, 64.0]],
                          'labels': [3, 3, 3, 3],
                          'scores': [0.21975, 0.21972, 0.21972, 0.21971]},
                         {'boxes': [[42.237, 18.984, 61.03, 30.009], [44.112, 19.988, 53.014, 28.007],
                                    [13.287, 42.97, 36.036, 64.0], [9.15, 30.977, 21.02, 47.013]],
                          'labels': [3, 3, 3, 3],
                          'scores': [0.21974, 0.21973, 0.21972, 0.21972]}],
          'losses': [{'loss': 2.203715, 'loss_box_reg': 0.568423, 'loss_classifier': 1.635293},
                     {'loss': 1.899384, 'loss_box_reg': 0.273397, 'loss_classifier': 1.625988},
                     {'loss': 1.796068, 'loss_box_reg': 0.307211, 'loss_classifier': 1.488857}]},
 'rcnn_svm': {'detections': [{'boxes': [[40.706, 4.93, 64.0, 18.889], [2.718, 34.899, 25.072, 54.841],
                                        [0.0, 0.0, 16.052, 12.897], [0.0, 0.0, 9.029, 7.936]],
                              'labels': [0, 0, 0, 0],
                              'scores': [0.28218, 0.28218, 0.28217, 0.28217]},
                             {'boxes': [[53.872, 54.954, 64.0, 63.928], [51.885, 18.96, 61.03, 26.937],
                                        [44.756, 40.884, 64.0, 63.818], [28.718, 41.889, 51.072, 63.825]],
                              'labels': [0, 0, 0, 0],
                              'scores': [0.28219, 0.28217, 0.28215, 0.28215]}],
              'losses': [{'loss': 2.203715, 'loss_box_reg': 0.568423, 'loss_classifier': 1.635293},
                         {'loss': 1.899384, 'loss_box_reg': 0.273397, 'loss_classifier': 1.625988},
                         {'loss': 1.796068, 'loss_box_reg': 0.307211, 'loss_classifier': 1.488857}]},
 'regression_global_average': {'detections': [{'boxes': [[1.382, 0.0, 64.0, 64.0]], 'labels': [1], 'scores': [0.20701]},
                               {'boxes': [[1.385, 0.0, 64.0, 64.0]], 'labels': [1], 'scores': [0.20702]}],
                'losses': [{'loss': 4.304462, 'loss_box_reg': 2.665389, 'loss_classifier': 1.639073},
                           {'loss': 4.550845, 'loss_box_reg': 2.973872, 'loss_classifier': 1.576973},
                           {'loss': 4.576822, 'loss_box_reg': 3.017784, 'loss_classifier': 1.559038}]},
 'sliding_window': {'detections': [{'boxes': [[1.704, 11.064, 40.841, 30.937], [21.487, 18.161, 32.669, 23.839],
                                              [29.353, 25.13, 48.921, 64.0], [19.204, 12.971, 35.017, 29.031]],
                                    'labels': [3, 3, 3, 3],
                                    'scores': [0.22066, 0.22059, 0.22058, 0.22058]},
                                   {'boxes': [[45.919, 21.323, 64.0, 32.677], [1.705, 5.064, 40.84, 24.936],
                                              [7.356, 6.948, 35.03, 35.051], [7.705, 23.064, 46.842, 42.937]],
                                    'labels': [3, 3, 3, 3],
                                    'scores': [0.22059, 0.22058, 0.22057, 0.22056]}],
                    'losses': [{'loss': 2.458634, 'loss_box_reg': 0.822349, 'loss_classifier': 1.636285},
                               {'loss': 2.34238, 'loss_box_reg': 0.731062, 'loss_classifier': 1.611318},
                               {'loss': 2.276216, 'loss_box_reg': 0.789346, 'loss_classifier': 1.48687}]}}

# Re-recorded for issue 13 (the regression rung's spatial box head, bins loss, window views, 64 px input: a new
# computation by design), on the code of that change with the loop above. The head before it is pinned by
# "regression_global_average", still equal to the record of commit 83ffe90.
EXPECTED["regression"] = {
    "detections": [{"boxes": [[32.071, 31.813, 32.28, 31.914]], "labels": [3], "scores": [0.21159]},
                   {"boxes": [[32.071, 31.813, 32.28, 31.914]], "labels": [3], "scores": [0.21147]}],
    "losses": [{"loss": 6.026637, "loss_box_reg": 3.451033, "loss_classifier": 2.575604},
               {"loss": 5.52126, "loss_box_reg": 3.442777, "loss_classifier": 2.078483},
               {"loss": 4.426988, "loss_box_reg": 3.388084, "loss_classifier": 1.038903}]}
