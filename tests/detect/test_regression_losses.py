"""The regression rung's box losses (detect/detectors/regression_losses.py) and its spatial head's boxes."""

from __future__ import annotations

import pytest
import torch

from detect.detectors.regression import GlobalPoolHead, boxes_from_edges, edges_in_image
from detect.detectors.regression_losses import (
    bins_loss,
    decode_bins,
    l2_loss,
    smooth_l1_loss,
    soft_bin_targets,
)


def test_soft_bin_target_sits_on_the_two_nearest_bins_and_decodes_to_the_edge():
    edges = torch.tensor([0.0, 0.13, 0.5, 0.731, 0.999, 1.0], dtype=torch.float64)
    target = soft_bin_targets(edges, 11)
    assert torch.allclose(target.sum(-1), torch.ones(6, dtype=torch.float64))
    assert ((target > 0).sum(-1) <= 2).all()
    # 0.13 * 10 = 1.3: 0.7 on bin 1, 0.3 on bin 2
    assert target[1, 1].item() == pytest.approx(0.7) and target[1, 2].item() == pytest.approx(0.3)
    assert target[0, 0].item() == 1.0 and target[-1, -1].item() == 1.0
    # logits whose softmax is the soft target (log of it; zeros as a very negative number) decode exactly
    logits = torch.log(target.clamp_min(1e-300))
    assert torch.allclose(decode_bins(logits), edges, atol=1e-12)


def test_bins_loss_is_the_cross_entropy_against_the_soft_target_and_least_at_it():
    edges = torch.tensor([[0.1, 0.2, 0.6, 0.9]])
    target = soft_bin_targets(edges, 8)
    at_target = torch.log(target.clamp_min(1e-12))
    entropy = -(target * torch.log(target.clamp_min(1e-12))).sum(-1).mean()
    assert bins_loss(at_target, edges, 1).item() == pytest.approx(entropy.item(), abs=1e-5)
    off = at_target.roll(2, dims=-1)  # the same distribution two bins off
    assert bins_loss(off, edges, 1).item() > bins_loss(at_target, edges, 1).item() + 1.0
    # averaged over the 4 edges, summed over rows, divided by the images given
    two = torch.cat([off, off])
    assert bins_loss(two, edges.repeat(2, 1), 4).item() == pytest.approx(bins_loss(off, edges, 1).item() / 2)


def test_l2_and_smooth_l1_losses_equal_a_hand_computation():
    pred = torch.tensor([[0.1, -0.2, 0.0, 0.5], [1.0, 0.0, 0.02, -0.3]])
    goal = torch.tensor([[0.0, 0.0, 0.0, 0.0], [0.5, 0.0, 0.0, -0.3]])
    # squared errors: 0.01 + 0.04 + 0 + 0.25 and 0.25 + 0 + 0.0004 + 0; over 4 images
    assert l2_loss(pred, goal, 4).item() == pytest.approx((0.30 + 0.2504) / 4)
    beta = 1 / 9  # |d| < beta: 0.5 d^2 / beta, else |d| - 0.5 beta
    by_hand = [0.5 * 0.1 ** 2 / beta, 0.2 - beta / 2, 0.0, 0.5 - beta / 2, 0.5 - beta / 2, 0.0, 0.5 * 0.02 ** 2 / beta, 0.0]
    assert smooth_l1_loss(pred, goal, 4).item() == pytest.approx(sum(by_hand) / 4)


@pytest.mark.parametrize("loss", ["l2", "smooth_l1", "bins"])
def test_each_loss_sends_gradients_to_the_features_through_the_spatial_head(loss):
    head = GlobalPoolHead(8, num_classes=3, representation_size=16, pool_size=2, conv_channels=6,
                          box_loss=loss, bins=9).train()
    feats = {"0": torch.randn(2, 8, 6, 6, requires_grad=True)}
    whole = [torch.tensor([[0.0, 0.0, 48.0, 40.0]])] * 2
    targets = [{"boxes": torch.tensor([[4.0, 6.0, 30.0, 33.0]]), "labels": torch.tensor([2])},
               {"boxes": torch.zeros((0, 4)), "labels": torch.zeros((0,), dtype=torch.int64)}]
    _, losses = head(feats, whole, [(40, 48)] * 2, targets)
    assert losses["loss_box_reg"].item() > 0
    losses["loss_box_reg"].backward()
    assert feats["0"].grad.abs().sum() > 0
    assert head.bbox_pred.weight.grad.abs().sum() > 0


def test_head_sees_where_the_object_is():
    """pool_size > 1 keeps the layout: the same content moved to another cell changes the box."""
    head = GlobalPoolHead(4, num_classes=2, representation_size=16, pool_size=2, box_loss="bins", bins=8).eval()
    left, right = torch.zeros(1, 4, 4, 4), torch.zeros(1, 4, 4, 4)
    left[..., :2] = 1.0
    right[..., 2:] = 1.0
    whole = [torch.tensor([[0.0, 0.0, 32.0, 32.0]])]
    a, _ = head({"0": left}, whole, [(32, 32)], score_thresh=0.0)
    b, _ = head({"0": right}, whole, [(32, 32)], score_thresh=0.0)
    assert not torch.allclose(a[0]["boxes"], b[0]["boxes"])
    pooled = GlobalPoolHead(4, num_classes=2, representation_size=16, pool_size=1, box_loss="bins", bins=8).eval()
    a, _ = pooled({"0": left}, whole, [(32, 32)], score_thresh=0.0)
    b, _ = pooled({"0": right}, whole, [(32, 32)], score_thresh=0.0)
    assert torch.allclose(a[0]["boxes"], b[0]["boxes"])  # global pooling: blind to where


def test_edges_round_trip_and_decoded_boxes_are_ordered():
    whole = torch.tensor([[0.0, 0.0, 80.0, 60.0]])
    boxes = torch.tensor([[8.0, 6.0, 40.0, 30.0]])
    edges = edges_in_image(boxes, whole)
    assert torch.allclose(edges, torch.tensor([[0.1, 0.1, 0.5, 0.5]]))
    assert torch.allclose(boxes_from_edges(edges, whole), boxes)
    swapped = torch.tensor([[0.5, 0.5, 0.1, 0.1]])  # x2 < x1 from two independent softmaxes
    assert torch.allclose(boxes_from_edges(swapped, whole), boxes)


def test_bins_head_decodes_its_training_target_when_it_predicts_the_soft_target():
    head = GlobalPoolHead(4, num_classes=2, representation_size=8, box_loss="bins", bins=16,
                          class_agnostic=True).eval()
    edges = torch.tensor([[0.25, 0.1, 0.8, 0.95]])
    logits = torch.log(soft_bin_targets(edges, 16).clamp_min(1e-30)).reshape(-1)
    with torch.no_grad():
        head.bbox_pred.weight.zero_()
        head.bbox_pred.bias.copy_(logits)
    dets, _ = head({"0": torch.randn(1, 4, 3, 3)}, [torch.tensor([[0.0, 0.0, 64.0, 48.0]])], [(48, 64)],
                   score_thresh=0.0)
    assert torch.allclose(dets[0]["boxes"][0], torch.tensor([16.0, 4.8, 51.2, 45.6]), atol=1e-3)


@pytest.mark.parametrize("pool", ["avg", "max"])
def test_a_pooled_classifier_scores_the_same_content_the_same_wherever_it_is(pool):
    """class_pool avg/max: the class scores are blind to where the object is; the box is not."""
    head = GlobalPoolHead(4, num_classes=2, representation_size=16, pool_size=2, class_pool=pool,
                          box_loss="bins", bins=8).eval()
    left, right = torch.zeros(1, 4, 4, 4), torch.zeros(1, 4, 4, 4)
    left[..., :1, :1] = torch.tensor([1.0, 2.0, 0.5, 3.0])[:, None, None]
    right[..., 3:, 3:] = torch.tensor([1.0, 2.0, 0.5, 3.0])[:, None, None]
    whole = [torch.tensor([[0.0, 0.0, 32.0, 32.0]])]
    a, _ = head({"0": left}, whole, [(32, 32)], score_thresh=0.0)
    b, _ = head({"0": right}, whole, [(32, 32)], score_thresh=0.0)
    assert torch.allclose(a[0]["scores"], b[0]["scores"]) and torch.equal(a[0]["labels"], b[0]["labels"])
    assert not torch.allclose(a[0]["boxes"], b[0]["boxes"])
