"""Faster R-CNN: parity with torchvision's own model, losses, empty images, timing."""

import pytest
import torch
from torchvision.models.detection import fasterrcnn_mobilenet_v3_large_320_fpn

from detect.build import build_detector
from detect.config import load_config
from detect.detectors.base import Detector
from detect.detectors.roi_heads import RegionHeads
from proposals.rpn import RPNProposals

# torchvision's fasterrcnn_mobilenet_v3_large_320_fpn settings, as config overrides.
MOBILENET_320 = [
    "model.backbone.name=mobilenet_v3_large_fpn", "model.backbone.trainable_layers=6",
    "data.image_size=320", "data.max_size=640",
    "model.rpn.pre_nms_top_n_test=150", "model.rpn.post_nms_top_n_test=150", "model.rpn.score_thresh=0.05",
    "model.rpn.anchors.sizes=[[32,64,128,256,512]]", "model.roi_head.roi_op=roi_align",
    "model.roi_head.representation_size=1024", "model.roi_head.batch_size_per_image=512",
    "test.score_thresh=0.0",
]


def test_state_dict_and_detections_equal_torchvision():
    torch.manual_seed(0)
    ref = fasterrcnn_mobilenet_v3_large_320_fpn(weights=None, weights_backbone=None, num_classes=91, box_score_thresh=0.0).eval()
    ours = build_detector(load_config(None, MOBILENET_320), num_classes=90).eval()
    assert list(ours.state_dict()) == list(ref.state_dict())  # same keys, same order
    ours.load_state_dict(ref.state_dict())
    images = [torch.rand(3, 300, 400), torch.rand(3, 240, 320)]
    with torch.no_grad():
        expected, got = ref(images), ours(images)
    for e, g in zip(expected, got):
        assert len(g["boxes"]) > 0
        torch.testing.assert_close(g["boxes"], e["boxes"], atol=1e-4, rtol=0)
        torch.testing.assert_close(g["scores"], e["scores"], atol=1e-6, rtol=0)
        assert torch.equal(g["labels"], e["labels"])


def _tiny(*overrides):
    return build_detector(load_config("configs/ladder/faster_rcnn.yaml", list(overrides)), num_classes=3)


def test_parts_are_the_shared_classes():
    model = _tiny()
    assert isinstance(model, Detector) and model.rung == "faster_rcnn"
    assert isinstance(model.proposal_source, RPNProposals) and isinstance(model.region_head, RegionHeads)
    assert model.backbone is not None  # the RPN and the RoI head share it


@pytest.mark.parametrize("roi_op", ["roi_align_matmul", "roi_pool", "roi_align"])
def test_training_losses_with_an_empty_image(roi_op):
    model = _tiny(f"model.roi_head.roi_op={roi_op}").train()
    images = [torch.rand(3, 128, 128), torch.rand(3, 100, 128)]
    targets = [
        {"boxes": torch.tensor([[10.0, 20.0, 60.0, 90.0]]), "labels": torch.tensor([2])},
        {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)},
    ]
    losses = model(images, targets)
    assert set(losses) == {"loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg"}
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    assert model.region_head.box_predictor.cls_score.weight.grad.abs().sum() > 0


def test_eval_outputs_original_coordinates_and_timing():
    model = _tiny("test.score_thresh=0.0").eval()
    images = [torch.rand(3, 64, 256)]  # resized to 32x128: max_size caps the long side
    detections, times = model.detect_with_timing(images)
    boxes = detections[0]["boxes"]
    assert len(boxes) > 0
    assert boxes[:, 2].max() <= 256 + 1e-4 and boxes[:, 3].max() <= 64 + 1e-4
    assert boxes[:, 2].max() > 128  # mapped back from the 32x128 resized image
    labels = detections[0]["labels"]
    assert labels.min() >= 1 and labels.max() <= 3
    assert times.proposals > 0 and times.network > 0 and times.total == times.proposals + times.network


def test_bg_iou_thresh_lo_ignores_easy_background():
    heads = _tiny("model.roi_head.bg_iou_thresh_lo=0.1").region_head
    proposals = [torch.tensor([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 40.0, 40.0], [100.0, 100.0, 120.0, 120.0]])]
    gt = [torch.tensor([[0.0, 0.0, 30.0, 30.0]])]
    _, labels = heads.assign_targets_to_proposals(proposals, gt, [torch.tensor([1])])
    # IoU 0.11 -> background (0); IoU 0.56 -> class 1; IoU 0 -> ignored (-1)
    assert labels[0].tolist() == [0, 1, -1]


def _torchvision_r50_fpn_as_for_coco_weights(**kwargs):
    """What ``fasterrcnn_resnet50_fpn(weights=COCO_V1)`` builds before loading the file (no download)."""
    from torchvision.models import resnet50
    from torchvision.models.detection import FasterRCNN
    from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor
    from torchvision.models.detection._utils import overwrite_eps
    from torchvision.ops import FrozenBatchNorm2d

    backbone = _resnet_fpn_extractor(resnet50(norm_layer=FrozenBatchNorm2d), 3)
    model = FasterRCNN(backbone, num_classes=91, **kwargs)
    overwrite_eps(model, 0.0)
    return model


def test_coco_r50_fpn_config_is_torchvisions_model():
    torch.manual_seed(0)
    ref = _torchvision_r50_fpn_as_for_coco_weights(min_size=192, max_size=240).eval()
    state = ref.state_dict()
    for key, value in state.items():  # random frozen-BN statistics, so a wrong eps would show
        if key.endswith("running_var"):
            value.uniform_(0.5, 2.0)
        elif key.endswith("running_mean") or (key.endswith(".bias") and "bn" in key):
            value.normal_(0.0, 0.1)
    ref.load_state_dict(state)
    cfg = load_config("configs/coco/faster_rcnn_r50_fpn.yaml", ["data.image_size=192", "data.max_size=240",
                                                                 "test.score_thresh=0.0"])
    ref.roi_heads.score_thresh = 0.0
    ours = build_detector(cfg, num_classes=len(cfg.classes)).eval()
    assert list(ours.state_dict()) == list(state)
    ours.load_state_dict(state)
    assert [n for n, p in ours.named_parameters() if p.requires_grad] == [n for n, p in ref.named_parameters() if p.requires_grad]
    image = [torch.rand(3, 180, 220)]
    with torch.no_grad():
        expected, got = ref(image)[0], ours(image)[0]
    assert len(got["boxes"]) > 0
    torch.testing.assert_close(got["boxes"], expected["boxes"], atol=1e-3, rtol=0)
    torch.testing.assert_close(got["scores"], expected["scores"], atol=1e-5, rtol=0)
    assert torch.equal(got["labels"], expected["labels"])
