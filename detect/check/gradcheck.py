"""Check 3: ``torch.autograd.gradcheck`` in float64 of the operators we wrote ourselves that have a backward.

Each entry of :data:`CASES` builds one tiny case, ``() -> (fn, inputs)``: ``fn``
maps float64 tensors that require grad to a tensor, deterministically (any
sampler inside is re-seeded on every call, since gradcheck calls ``fn`` many
times). Adding an operator is one line in :data:`CASES`. The inputs are random
and tiny, so kinks (ReLU at 0, max-pooling ties, the smooth-L1 knee) are not hit.
"""

from __future__ import annotations

import time
from typing import Callable

import torch

from detect.check.verdict import FAIL, PASS, Verdict

IMAGE_SIZE = (24, 28)  # (h, w) of the image the tiny feature maps (stride 4) belong to


def _features(channels: int = 2) -> torch.Tensor:
    """(1, C, 6, 7) float64 features of an image of IMAGE_SIZE at stride 4, requiring grad."""
    gen = torch.Generator().manual_seed(0)
    return torch.randn(1, channels, 6, 7, generator=gen, dtype=torch.float64).requires_grad_()


def _boxes() -> torch.Tensor:
    return torch.tensor([[1.0, 2.0, 17.5, 20.0], [4.3, 0.0, 27.0, 11.2], [10.0, 6.5, 14.0, 9.0]], dtype=torch.float64)


def _targets() -> list[dict]:
    return [{"boxes": torch.tensor([[2.0, 3.0, 16.0, 19.0], [12.0, 5.0, 26.0, 12.0]], dtype=torch.float64),
             "labels": torch.tensor([1, 2])}]


def _pooler_case(op: str):
    from detect.ops.roi_align import build_roi_pooler

    pooler = build_roi_pooler(op, ["0"], output_size=3, sampling_ratio=2)
    return (lambda feat: pooler({"0": feat}, [_boxes()], [IMAGE_SIZE])), (_features(),)


def roi_align_matmul_case():
    """detect/ops/roi_align.py: RoIAlign as two matrix products."""
    return _pooler_case("roi_align_matmul")


def roi_pool_case():
    """detect/ops/roi_pool.py: max pooling over quantised bins (range-max table)."""
    return _pooler_case("roi_pool")


def crop_warp_case():
    """detect/ops/crop_warp.py: crop-and-warp with context padding (zero outside the image)."""
    from detect.ops.crop_warp import crop_and_warp

    gen = torch.Generator().manual_seed(1)
    images = torch.randn(1, 2, *IMAGE_SIZE, generator=gen, dtype=torch.float64).requires_grad_()
    return (lambda im: crop_and_warp(im, [_boxes()], 5, context_pad=1.0)), (images,)


def _seeded_losses(head, feat, proposals, extra=None):
    torch.manual_seed(0)  # the RoI sampler draws from the global RNG: the same draw on every call
    _, losses = head({"0": feat}, proposals, [IMAGE_SIZE], _targets(), **(extra or {}))
    return sum(losses.values())


def roi_head_losses_case():
    """detect/detectors/roi_heads.py: sampling + RoIAlign + MLP + Fast R-CNN's multi-task loss."""
    from detect.detectors.roi_heads import build_region_heads

    head = build_region_heads(2, 2, featmap_names=["0"], roi_op="roi_align_matmul", output_size=3,
                              representation_size=8, batch_size_per_image=8, bbox_reg_weights=[10, 10, 5, 5])
    head = head.double().train()
    return (lambda feat: _seeded_losses(head, feat, [_boxes()])), (_features(),)


def global_pool_losses_case():
    """detect/detectors/regression.py: the map (conv, pooled to a 2 x 2 grid) -> class scores + one box; the
    sum of its losses with each box loss (l2, smooth_l1, bins), and the global-average-pooling head's."""
    from detect.detectors.regression import GlobalPoolHead

    heads = [GlobalPoolHead(2, 2, representation_size=8, pool_size=2, conv_channels=3, box_loss=loss, bins=5)
             for loss in ("l2", "smooth_l1", "bins")] + [GlobalPoolHead(2, 2, representation_size=8)]
    heads = [head.double().train() for head in heads]
    whole = [torch.tensor([[0.0, 0.0, IMAGE_SIZE[1], IMAGE_SIZE[0]]], dtype=torch.float64)]
    return (lambda feat: sum(_seeded_losses(head, feat, whole) for head in heads)), (_features(),)


#: name -> case builder. One line per operator.
CASES: dict[str, Callable[[], tuple[Callable, tuple]]] = {
    "roi_align_matmul": roi_align_matmul_case,
    "roi_pool": roi_pool_case,
    "crop_and_warp": crop_warp_case,
    "roi_head_losses": roi_head_losses_case,
    "global_pool_losses": global_pool_losses_case,
}


def run_case(build) -> tuple[bool, str]:
    """(passed, one-line reason) of gradcheck on one case."""
    fn, inputs = build()
    try:
        ok = torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3)
    except RuntimeError as exc:  # gradcheck's report of a mismatch
        return False, str(exc).strip().splitlines()[0][:200]
    return bool(ok), "analytical and numerical gradients agree"


def check_gradients(cases: dict | None = None) -> Verdict:
    """gradcheck every case of ``cases`` (default :data:`CASES`)."""
    tick = time.perf_counter()
    cases = CASES if cases is None else cases
    results = {name: run_case(build) for name, build in cases.items()}
    failed = [name for name, (ok, _) in results.items() if not ok]
    details = [f"{name}: {'pass' if ok else 'FAIL'} ({why})" for name, (ok, why) in results.items()]
    measured = f"{len(cases) - len(failed)} of {len(cases)} agree"
    measured += f" (failed: {', '.join(failed)})" if failed else ""
    hint = "a hand-written backward (or a non-differentiable step in the forward) disagrees with finite differences"
    return Verdict("gradient check", FAIL if failed else PASS, measured, "every operator agrees (float64)", hint,
                   details, {"cases": {n: ok for n, (ok, _) in results.items()}}, time.perf_counter() - tick)
