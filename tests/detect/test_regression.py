"""Localization as regression: one target per image, one box per image."""

from __future__ import annotations

import pytest
import torch
from tests.detect.ladder_util import assert_detection_schema, batch, build, train_steps
from torchvision.models.detection.image_list import ImageList

from detect.detectors.regression import GlobalPoolHead, WholeImageSource, pick_target


def test_pick_target_takes_the_largest_or_the_first_object():
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 30.0, 20.0], [5.0, 5.0, 25.0, 25.0]])
    labels = torch.tensor([3, 1, 2])
    box, label = pick_target(boxes, labels, "largest")
    assert torch.equal(box, boxes[1]) and int(label) == 1
    box, label = pick_target(boxes, labels, "first")
    assert torch.equal(box, boxes[0]) and int(label) == 3
    box, label = pick_target(torch.zeros((0, 4)), torch.zeros((0,), dtype=torch.int64))
    assert int(label) == 0  # an image without objects trains the background class


def test_whole_image_source_returns_the_resized_image_box():
    images = ImageList(torch.zeros(2, 3, 64, 96), [(64, 96), (60, 80)])
    boxes, losses = WholeImageSource()(images)
    assert losses == {}
    assert boxes[0].tolist() == [[0.0, 0.0, 96.0, 64.0]] and boxes[1].tolist() == [[0.0, 0.0, 80.0, 60.0]]


@pytest.mark.parametrize("agnostic", [False, True])
def test_head_shapes_and_box_loss_only_on_the_target(agnostic):
    head = GlobalPoolHead(8, num_classes=3, representation_size=16, class_agnostic=agnostic)
    feats = {"0": torch.randn(2, 8, 4, 4, requires_grad=True)}
    whole = [torch.tensor([[0.0, 0.0, 64.0, 64.0]])] * 2
    targets = [{"boxes": torch.tensor([[0.0, 0.0, 64.0, 64.0]]), "labels": torch.tensor([2])},
               {"boxes": torch.zeros((0, 4)), "labels": torch.zeros((0,), dtype=torch.int64)}]
    assert head.bbox_pred.out_features == (4 if agnostic else 16)
    head.train()
    _, losses = head(feats, whole, [(64, 64)] * 2, targets)
    assert set(losses) == {"loss_classifier", "loss_box_reg"}
    sum(losses.values()).backward()
    assert feats["0"].grad is not None and feats["0"].grad.abs().sum() > 0
    # zero deltas already encode the whole-image box, so only a wrong box costs anything
    with torch.no_grad():
        head.bbox_pred.weight.zero_()
        head.bbox_pred.bias.zero_()
    _, losses = head(feats, whole, [(64, 64)] * 2, targets)
    assert float(losses["loss_box_reg"].detach()) == 0.0


def test_topk_detections_share_the_one_box_when_class_agnostic():
    head = GlobalPoolHead(8, num_classes=4, representation_size=16, topk=3, class_agnostic=True).eval()
    dets, _ = head({"0": torch.randn(2, 8, 4, 4)}, [torch.tensor([[0.0, 0.0, 50.0, 40.0]])] * 2, [(40, 50)] * 2)
    for d in dets:
        assert d["boxes"].shape == (3, 4) and torch.allclose(d["boxes"][0], d["boxes"][2])
        assert len(set(d["labels"].tolist())) == 3 and torch.all(d["scores"][:-1] >= d["scores"][1:])


def test_regression_rung_trains_and_detects_one_box_per_image(synth_root):
    images, targets, _, names = batch(synth_root, n=4)
    model = build("regression", len(names))
    history = train_steps(model, images, targets, None, steps=25)
    assert history[-1] < 0.6 * history[0]
    model.eval()
    with torch.no_grad():
        dets = model(images)
    assert_detection_schema(dets, 4, len(names), [im.shape[-2:] for im in images])
    assert all(len(d["boxes"]) == 1 for d in dets)  # topk: 1 in configs/ladder/regression.yaml
