"""R-CNN: the fine-tuning sampler, the crop head, SVMs, and the rung end to end."""

from __future__ import annotations

import torch
from torchvision.models.detection._utils import BoxCoder
from torchvision.ops import box_iou

from detect.detectors.rcnn import RCNNSampler, postprocess_detections
from detect.detectors.svm import SVMStage, region_labels, train_svms


def _grid_proposals(n_side: int, size: float = 128.0, box: float = 24.0) -> torch.Tensor:
    """n_side**2 boxes of side ``box`` on a grid over a size x size image."""
    starts = torch.linspace(0, size - box, n_side)
    ys, xs = torch.meshgrid(starts, starts, indexing="ij")
    return torch.stack([xs.flatten(), ys.flatten(), xs.flatten() + box, ys.flatten() + box], dim=1)


def _targets():
    return [
        {"boxes": torch.tensor([[10.0, 10.0, 40.0, 40.0], [60.0, 60.0, 100.0, 90.0]]), "labels": torch.tensor([1, 3])},
        {"boxes": torch.tensor([[30.0, 20.0, 70.0, 60.0]]), "labels": torch.tensor([2])},
    ]


def test_sampler_labels_by_iou_hand_computed():
    sampler = RCNNSampler(add_gt=False)
    gt = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    props = torch.tensor([
        [0.0, 0.0, 10.0, 10.0],  # IoU 1 -> class
        [0.0, 0.0, 10.0, 5.0],  # IoU 0.5 -> class (>= 0.5)
        [0.0, 0.0, 10.0, 4.0],  # IoU 0.4 -> background
        [50.0, 50.0, 60.0, 60.0],  # IoU 0 -> background
    ])
    boxes, labels, matched = sampler._label_image(props, gt, torch.tensor([7]))
    assert labels.tolist() == [7, 7, 0, 0]
    assert torch.equal(matched[0], gt[0])


def test_sampler_draws_32_positives_and_96_backgrounds_over_the_batch():
    torch.manual_seed(0)
    coder = BoxCoder((10.0, 10.0, 5.0, 5.0))
    sampler = RCNNSampler(batch_size=128, positive_fraction=0.25)
    props = _grid_proposals(20)  # 400 boxes per image, plenty of both kinds
    jitter = torch.cat([torch.tensor([[10.0, 10.0, 40.0, 40.0]]) + torch.randn(60, 4),
                        torch.tensor([[30.0, 20.0, 70.0, 60.0]]) + torch.randn(60, 4)])
    out = sampler([torch.cat([props, jitter[:60]]), torch.cat([props, jitter[60:]])], _targets(), coder)
    labels = torch.cat(out.labels)
    assert labels.numel() == 128
    assert int((labels > 0).sum()) == 32 and int((labels == 0).sum()) == 96
    assert len(out.boxes) == 2 and all(len(b) == len(lab) for b, lab in zip(out.boxes, out.labels))
    # positives regress to their matched box: decoding the targets gives the ground truth back
    coder = BoxCoder((10.0, 10.0, 5.0, 5.0))
    for boxes, lab, reg, tgt in zip(out.boxes, out.labels, out.regression_targets, _targets()):
        pos = lab > 0
        if pos.any():
            decoded = coder.decode_single(reg[pos], boxes[pos])
            assert torch.all(box_iou(decoded, tgt["boxes"]).max(dim=1).values > 0.999)


def test_sampler_tops_up_with_background_when_positives_are_scarce():
    coder = BoxCoder((1.0, 1.0, 1.0, 1.0))
    sampler = RCNNSampler(batch_size=128, positive_fraction=0.25)
    props = _grid_proposals(12)  # 144 boxes, few overlap the objects by >= 0.5
    out = sampler([props, props], _targets(), coder)
    labels = torch.cat(out.labels)
    n_pos = int((labels > 0).sum())
    assert n_pos < 32 and labels.numel() == 128  # ground-truth boxes are positives; the rest background


def test_sampler_handles_an_image_without_objects():
    coder = BoxCoder((1.0, 1.0, 1.0, 1.0))
    sampler = RCNNSampler()
    empty = {"boxes": torch.zeros((0, 4)), "labels": torch.zeros((0,), dtype=torch.int64)}
    out = sampler([_grid_proposals(5)], [empty], coder)
    assert torch.all(out.labels[0] == 0) and len(out.labels[0]) == 25


def test_postprocess_drops_background_and_suppresses_per_class():
    coder = BoxCoder((10.0, 10.0, 5.0, 5.0))
    props = [torch.tensor([[0.0, 0.0, 20.0, 20.0], [1.0, 1.0, 21.0, 21.0], [50.0, 50.0, 70.0, 70.0]])]
    scores = torch.tensor([[0.1, 0.9, 0.0], [0.2, 0.8, 0.0], [0.9, 0.05, 0.05]])  # (3, C+1), C = 2
    out = postprocess_detections(scores, torch.zeros(3, 12), props, [(100, 100)], coder, 0.06, 0.5, 100)[0]
    assert out["labels"].tolist() == [1]  # the two overlapping class-1 boxes -> one; background-ish box dropped
    assert torch.allclose(out["boxes"], props[0][:1]) and torch.allclose(out["scores"], torch.tensor([0.9]))


def test_svms_separate_classes_and_mine_hard_negatives():
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(600, 8, generator=g)
    feats[:20, 0] += 4.0  # class 1 ground truth
    feats[20:40, 1] += 4.0  # class 2 ground truth
    feats[40:60, 0] += 3.0  # hard negatives for class 1 (look like it, IoU < 0.3)
    ious = torch.zeros(600, 2)
    ious[:20, 0] = 1.0
    ious[20:40, 1] = 1.0
    is_gt = torch.zeros(600, dtype=torch.bool)
    is_gt[:40] = True
    weight, bias = train_svms(feats, ious, is_gt, start_negatives=50, rounds=3, generator=g)
    svm = SVMStage(8, 2)
    svm.weight.data, svm.bias.data = weight, bias
    scores = svm(feats)
    assert scores.shape == (600, 3) and torch.all(scores[:, 0] == 0)
    assert scores[:20, 1].mean() > 0.5 > scores[60:, 1].mean()
    assert scores[40:60, 1].mean() < 0.5  # the mined look-alikes end up on the negative side
    assert scores[20:40, 2].mean() > 0.5 > scores[60:, 2].mean()


def test_region_labels_take_the_max_iou_per_class():
    props = torch.tensor([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 5.0]])
    gt = torch.tensor([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 5.0]])
    ious = region_labels(props, gt, torch.tensor([2, 2]), num_classes=3)
    assert torch.allclose(ious, torch.tensor([[0.0, 1.0, 0.0], [0.0, 1.0, 0.0]]))


# --------------------------------------------------------------------------- the rung end to end

SMALL = ["model.crop.size=24", "model.crop.context_pad=2", "model.crop.batch_size=64"]


def test_rcnn_rung_trains_and_detects(synth_root):
    from tests.detect.ladder_util import assert_detection_schema, batch, build, train_steps

    images, targets, proposals, names = batch(synth_root, n=4, with_proposals=True)
    model = build("rcnn", len(names), *SMALL)
    assert model.backbone is None  # the crop head owns the backbone and runs it on every crop
    history = train_steps(model, images, targets, proposals, steps=20)
    assert sum(history[-3:]) < 0.7 * sum(history[:3])
    model.eval()
    with torch.no_grad():
        dets = model(images, proposals=proposals)
        timed, times = model.detect_with_timing(images, proposals)
    assert_detection_schema(dets, 4, len(names), [im.shape[-2:] for im in images])
    assert times.network > 0 and times.proposals >= 0
    for a, b in zip(dets, timed):
        torch.testing.assert_close(a["boxes"], b["boxes"])


def test_crop_head_chunks_give_the_same_detections(synth_root):
    from tests.detect.ladder_util import batch, build

    images, _, proposals, names = batch(synth_root, n=2, with_proposals=True)
    model = build("rcnn", len(names), *SMALL).eval()
    with torch.no_grad():
        whole = model(images, proposals=proposals)
        model.roi_heads.chunk_size = 7
        chunked = model(images, proposals=proposals)
    for a, b in zip(whole, chunked):
        torch.testing.assert_close(a["scores"], b["scores"], atol=1e-5, rtol=1e-4)


def test_svm_head_is_fitted_after_training_and_replaces_softmax(synth_root, tmp_path, monkeypatch):
    from detect.train import train
    from tests.detect.ladder_util import small_config

    # proposal workers by spawn: forking a process whose torch threads ran can deadlock the child
    monkeypatch.setattr("proposals.cache.get_all_start_methods", lambda: ["spawn"])
    cfg = small_config("rcnn", *SMALL, "model.crop.head=svm", "model.crop.svm_images=8", "train.iterations=3",
                       "train.batch_size=4", "train.warmup_iterations=1", "model.precomputed.top_n_train=200")
    result = train(cfg, tmp_path / "run", data_root=synth_root)
    state = torch.load(result.model_path, weights_only=True)["state_dict"]
    assert bool(state["roi_heads.svm.fitted"])
    assert float(state["roi_heads.svm.weight"].abs().sum()) > 0
