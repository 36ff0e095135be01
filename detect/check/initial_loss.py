"""Check 1: the classification losses at iteration 0 against what the initialisation predicts.

A softmax over K = C + 1 outputs (C classes + background) whose logits are
all about equal gives the cross-entropy ln K whatever the labels; a sigmoid
objectness whose logits are about 0 gives ln 2. Logits with a spread s raise
the softmax's start by roughly s^2/2 (K-1)/K, so the tolerance
``check.init_tolerance`` (a fraction of the expected value) bounds how far
from "small final weights" the head may start: 0.25 of ln 4 allows s up to
about 1. ``scale_classifiers`` multiplies those final layers' weights
(``check.init_scale``), so a user can see the check catch a bad start.
"""

from __future__ import annotations

import math
import time

import torch
from torch import nn

from detect.check.steps import losses_of, seed_for
from detect.check.verdict import FAIL, PASS, WARN, Verdict, fmt, worst


def classification_layers(model) -> dict[str, nn.Linear | nn.Conv2d]:
    """Loss term -> the final layer whose outputs that term's softmax/sigmoid reads."""
    found = {}
    head = model.region_head
    predictor = getattr(head, "box_predictor", head)  # roi and crop heads: FastRCNNPredictor; global pool: itself
    if isinstance(getattr(predictor, "cls_score", None), nn.Module):
        found["loss_classifier"] = predictor.cls_score
    rpn_head = getattr(model.proposal_source, "head", None)
    if isinstance(getattr(rpn_head, "cls_logits", None), nn.Module):
        found["loss_objectness"] = rpn_head.cls_logits
    return found


@torch.no_grad()
def scale_classifiers(model, factor: float) -> None:
    """Multiply the final classification layers' weights by ``factor`` (``check.init_scale``)."""
    if factor != 1.0:
        for layer in classification_layers(model).values():
            layer.weight.mul_(factor)


def expected_losses(model, num_classes: int) -> dict[str, tuple[float, str]]:
    """Loss term -> (expected value at initialisation, why)."""
    out = {}
    for term in classification_layers(model):
        if term == "loss_objectness":
            out[term] = (math.log(2), "ln 2: sigmoid objectness at logit 0")
        else:
            k = num_classes + 1
            out[term] = (math.log(k), f"ln {k}: softmax over {num_classes} classes + background, equal logits")
    return out


def check_initial_loss(model, samples, *, batches: int, tolerance: float, seed: int) -> Verdict:
    """Mean of each loss term over ``batches`` real batches at iteration 0 (model in training mode, no update)."""
    tick = time.perf_counter()
    sums: dict[str, float] = {}
    with torch.no_grad():
        for k in range(batches):
            torch.manual_seed(seed_for(seed, k))
            for name, value in losses_of(model, samples.batch(k)).items():
                sums[name] = sums.get(name, 0.0) + float(value) / batches
    expected = expected_losses(model, samples.num_classes)
    status, measured, wanted, details = PASS, [], [], []
    for term, (value, why) in expected.items():
        got = sums.get(term, math.nan)
        off = abs(got / value - 1) if math.isfinite(got) else math.inf
        term_status = PASS if off <= tolerance else WARN if off <= 2 * tolerance else FAIL
        status = worst([status, term_status])
        measured.append(f"{term} {fmt(got)}")
        wanted.append(f"{fmt(value)} ± {tolerance:.0%}")
        details.append(f"{term}: {fmt(got)} vs {why} = {fmt(value)} ({off:.0%} off: {term_status})")
    details += [f"{name}: {fmt(v)} (not a classification term: no expected value)"
                for name, v in sums.items() if name not in expected]
    details.append(f"tolerance ±{tolerance:.0%} (check.init_tolerance): logits that start with a spread s add about "
                   "s²/2 · C/(C+1) to ln(C+1); small final weights keep s well below 1")
    hint = ("the final classification layer starts with weights that are too large (or a bias that favours "
            "one class); initialise it with small weights, std ~0.01 (check.init_scale multiplies them)")
    return Verdict("initial loss", status, ", ".join(measured), ", ".join(wanted), hint, details,
                   {"terms": {k: {"measured": sums.get(k), "expected": v[0]} for k, v in expected.items()}},
                   time.perf_counter() - tick)
