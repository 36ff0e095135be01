"""Object-centric training crops of the regression rung (detect/data/object_crops.py) and their hook."""

from __future__ import annotations

import numpy as np
import pytest

from detect.config import load_config
from detect.data.object_crops import ObjectCrops, draw_window, object_crops
from detect.data.training import BatchPlan, TrainingSet
from detect.data.voc import VOCDataset
from tests.detect.ladder_util import LADDER


@pytest.mark.parametrize("fraction", [0.1, 0.3, 0.6, 1.0])
def test_window_holds_the_box_whole_at_the_asked_fraction(fraction):
    rng = np.random.default_rng(0)
    box = np.array([30.0, 40.0, 54.0, 58.0])  # 24 x 18 in a 160 x 120 image
    for _ in range(50):
        x0, y0, x1, y1 = draw_window(box, 160, 120, fraction, rng)
        assert 0 <= x0 <= box[0] and box[2] <= x1 <= 160 and 0 <= y0 <= box[1] and box[3] <= y1 <= 120
        assert (x1 - x0) / (y1 - y0) == pytest.approx(160 / 120, rel=0.05)  # the image's aspect ratio
        tighter = max(24 / (x1 - x0), 18 / (y1 - y0))
        # the window is the image when the asked fraction would need a larger one
        assert tighter == pytest.approx(fraction, rel=0.05) or (x1 - x0, y1 - y0) == (160, 120)


def test_crop_keeps_one_object_in_window_pixels_and_prefers_an_uncluttered_window():
    image = np.zeros((100, 100, 3), np.uint8)
    boxes = np.array([[10, 10, 30, 30], [60, 60, 95, 95]], np.float32)
    labels = np.array([1, 2])
    crops = ObjectCrops(seed=0, fraction_min=0.3, fraction_max=0.5)
    for position in range(40):
        crop, box, label = crops(image, boxes, labels, position)
        assert box.shape == (1, 4) and label.shape == (1,)
        h, w = crop.shape[:2]
        assert 0 <= box[0, 0] < box[0, 2] <= w and 0 <= box[0, 1] < box[0, 3] <= h
        side = boxes[labels == label[0]][0]
        assert box[0, 2] - box[0, 0] == pytest.approx(side[2] - side[0])  # not resized: the transform does that
        if label[0] == 1:  # windows around the small object can always leave the big one out
            assert w <= 60 and h <= 60
    # a pure function of (seed, position)
    a, b = crops(image, boxes, labels, 7), crops(image, boxes, labels, 7)
    assert np.array_equal(a[1], b[1]) and a[0].shape == b[0].shape
    assert {int(crops(image, boxes, labels, p)[2][0]) for p in range(40)} == {1, 2}


def test_window_view_keeps_the_scale_and_blanks_the_rest_and_erase_blanks_the_other_objects():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (100, 120, 3), dtype=np.uint8)
    boxes = np.array([[10, 10, 30, 30], [60, 50, 100, 95]], np.float32)
    labels = np.array([1, 2])
    fill = np.array([124, 116, 104], np.uint8)  # the ImageNet mean: 0 once normalised
    for position in range(10):
        out, box, label = ObjectCrops(0, 0.3, 0.6, view="window")(image, boxes, labels, position)
        assert out.shape == image.shape and np.array_equal(box[0], boxes[labels == label[0]][0])
        x1, y1, x2, y2 = box[0].astype(int)
        assert np.array_equal(out[y1:y2, x1:x2], image[y1:y2, x1:x2])  # the object itself, untouched
        blank = (out == fill).all(-1)
        assert blank.any() and not blank[y1:y2, x1:x2].any()
    out, box, label = ObjectCrops(0, 0.3, 0.6, view="erase")(image, boxes, labels, 3)
    other = boxes[labels != label[0]][0].astype(int)
    assert (out[other[1]:other[3], other[0]:other[2]] == fill).all()
    mine = box[0].astype(int)
    assert np.array_equal(out[mine[1]:mine[3], mine[0]:mine[2]], image[mine[1]:mine[3], mine[0]:mine[2]])


def test_an_image_without_objects_is_left_alone():
    image = np.zeros((20, 30, 3), np.uint8)
    out = ObjectCrops(0, 0.2, 0.9)(image, np.zeros((0, 4), np.float32), np.zeros((0,), np.int64), 3)
    assert out[0] is image and len(out[1]) == 0


def test_training_set_crops_only_for_the_regression_head_and_only_with_a_position(synth_root):
    config = load_config(LADDER / "regression.yaml", ["model.global_pool.train_view=crop"])
    crops = object_crops(config)
    assert isinstance(crops, ObjectCrops) and crops.view == "crop"
    assert object_crops(load_config(LADDER / "regression.yaml", ["model.global_pool.train_view=image"])) is None
    assert object_crops(load_config(LADDER / "fast_rcnn.yaml")) is None
    voc = VOCDataset(synth_root, "train")
    items = TrainingSet(voc, None, crops)
    plan = BatchPlan(len(voc), 4, seed=0, start=0, iterations=2)
    for index, flip, position in plan.batch(1):
        assert position in range(4, 8)
        image, target, _ = items[(index, flip, position)]
        assert target["boxes"].shape == (1, 4) and image.shape[1:] != (0, 0)
        full, _, _ = items[(index, flip)]  # no position (the SVM stage, the checks): the whole image
        assert full.shape[1:] == voc[index][0].shape[:2]
