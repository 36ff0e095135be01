"""detladder check (issue 15): the stop rule, each check's verdict on hand-made cases, and the command."""

from __future__ import annotations

import json
import math

import pytest
import torch

from detect.check import run_checks, validate_check_config
from detect.check.gradcheck import CASES, check_gradients, crop_warp_case, roi_align_matmul_case, run_case
from detect.check.initial_loss import check_initial_loss, classification_layers, expected_losses
from detect.check.lr_sweep import check_lr_sweep, suggest, sweep_rates
from detect.check.overfit import check_overfit
from detect.check.samples import load_samples
from detect.check.verdict import FAIL, PASS, WARN, Verdict, explosion_index, worst
from detect.config import load_config
from eval.errors import InputError
from tests.detect.ladder_util import LADDER

TINY = ["model.backbone.width=8", "train.batch_size=4", "check.batches=1", "check.overfit_images=4",
        "check.overfit_iterations=6", "check.sweep_iterations=6", "check.gradcheck=false"]


def tiny(rung: str, root, *extra: str):
    return load_config(LADDER / f"{rung}.yaml", [*TINY, f"data.root={root}", *extra])


# --------------------------------------------------------------------------- the stop rule and verdicts


def test_explosion_index_stops_at_nan_and_at_three_times_the_start():
    assert explosion_index([1.0, 0.9, 0.8, 0.7]) is None
    assert explosion_index([1.0, 0.9, math.nan, 0.5]) == 2
    assert explosion_index([math.inf]) == 0
    # debiased moving average (beta 0.8): [1, 1, 8] -> 1, 1, 3.87; [1, 1, 5, 5] -> 1, 1, 2.64, 3.44
    assert explosion_index([1.0, 1.0, 8.0, 8.0]) == 2
    assert explosion_index([1.0, 1.0, 5.0, 5.0]) == 3
    assert explosion_index([2.0] + [7.0] * 10, factor=3.0) is not None
    assert explosion_index([2.0] + [5.9] * 30, factor=3.0) is None  # below 3 x 2 for good


def test_one_noisy_batch_is_not_an_explosion():
    assert explosion_index([1.0, 1.0, 1.0, 1.0, 5.0, 1.0, 1.0]) is None  # smoothed peak 1.9
    assert explosion_index([1.0, 1.0, 1.0, 1.0, 5.0, 1.0, 1.0], beta=0.0) == 4  # raw values: it would stop


def test_worst_and_line():
    assert worst([PASS, WARN]) == WARN and worst([WARN, FAIL, PASS]) == FAIL and worst([]) == PASS
    v = Verdict("overfit", FAIL, "mAP 0.2", "mAP >= 0.9", hint="lower the lr")
    assert v.line() == "FAIL  overfit: mAP 0.2 (expected mAP >= 0.9); hint: lower the lr"
    assert "hint" not in Verdict("x", PASS, "a", "b", hint="h").line()


def test_sweep_suggests_a_tenth_of_the_rate_at_the_lowest_smoothed_loss():
    rates = sweep_rates(1e-6, 1.0, 7).tolist()
    assert rates[0] == pytest.approx(1e-6) and rates[-1] == pytest.approx(1.0)
    assert rates[3] == pytest.approx(1e-3)
    losses = [2.0, 2.0, 1.0, 0.2, 0.2, 0.2, 3.0]  # smoothed minimum at index 5
    assert suggest(rates, losses) == pytest.approx(rates[5] / 10)


# --------------------------------------------------------------------------- gradient check


class _WrongBackward(torch.autograd.Function):
    """x ** 2 with the gradient of x ** 3: gradcheck must catch it."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x**2

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * 3 * x**2


def test_gradcheck_passes_our_operators_and_catches_a_wrong_backward():
    assert {"roi_align_matmul", "roi_pool", "crop_and_warp", "roi_head_losses"} <= set(CASES)
    assert run_case(roi_align_matmul_case)[0] and run_case(crop_warp_case)[0]
    def wrong():
        return _WrongBackward.apply, (torch.rand(3, dtype=torch.float64).add(0.5).requires_grad_(),)

    verdict = check_gradients({"right": crop_warp_case, "wrong": wrong})
    assert verdict.status == FAIL and "wrong" in verdict.measured and "1 of 2" in verdict.measured


# --------------------------------------------------------------------------- initial loss


def _fresh(cfg, n):
    from detect.build import build_detector

    return build_detector(cfg, n).train()


def test_initial_loss_expects_ln_k_and_ln_2_and_fails_with_large_final_weights(synth_root):
    from detect.check.initial_loss import scale_classifiers

    cfg = tiny("faster_rcnn", synth_root)
    samples = load_samples(cfg, 4, 4)
    model = _fresh(cfg, samples.num_classes)
    assert set(classification_layers(model)) == {"loss_classifier", "loss_objectness"}
    expected = expected_losses(model, samples.num_classes)
    assert expected["loss_classifier"][0] == pytest.approx(math.log(samples.num_classes + 1))
    assert expected["loss_objectness"][0] == pytest.approx(math.log(2))
    good = check_initial_loss(model, samples, batches=1, tolerance=0.25, seed=0)
    assert good.status == PASS, good.details
    scale_classifiers(model, 100.0)  # width 8: small features, so a large factor
    bad = check_initial_loss(model, samples, batches=1, tolerance=0.25, seed=0)
    assert bad.status == FAIL and "small weights" in bad.hint
    got = bad.curves["terms"]["loss_classifier"]["measured"]
    assert got > 1.5 * math.log(samples.num_classes + 1)


def test_the_regression_head_has_one_classifier_term(synth_root):
    cfg = tiny("regression", synth_root)
    model = _fresh(cfg, 4)
    assert list(classification_layers(model)) == ["loss_classifier"]


# --------------------------------------------------------------------------- overfit and sweep


def test_a_learning_rate_of_ten_fails_the_overfit_check_and_the_sweep(synth_root):
    cfg = tiny("regression", synth_root, "train.lr=10", "check.sweep_lr_min=1e-3", "check.sweep_lr_max=100")
    samples = load_samples(cfg, 4, 4)
    overfit = check_overfit(_fresh(cfg, samples.num_classes), cfg, samples)
    assert overfit.status == FAIL, overfit.line()
    sweep = check_lr_sweep(_fresh(cfg, samples.num_classes), cfg, samples)
    assert sweep.status == FAIL and sweep.curves["sweep"]["stop"] is not None, sweep.line()
    assert "explodes" in sweep.hint


def test_overfit_images_are_ones_the_proposals_can_represent(synth_root):
    from detect.check.overfit import covered

    cfg = tiny("sliding_window", synth_root)
    samples = load_samples(cfg, 4, 4)
    samples.targets[1] = {"boxes": torch.tensor([[3.0, 3.0, 5.0, 5.0]]), "labels": torch.tensor([1])}  # 2 px: no window
    few, skipped = covered(_fresh(cfg, samples.num_classes), samples, 3)
    assert skipped == 1 and few.voc.image_ids == [samples.voc.image_ids[i] for i in (0, 2, 3)]
    assert few.targets[1] is samples.targets[2]
    rpn = tiny("faster_rcnn", synth_root)  # a learned source: the first images, whatever they hold
    assert covered(_fresh(rpn, samples.num_classes), samples, 3)[1] == 0


def test_budgets_that_make_no_sense_are_refused():
    with pytest.raises(InputError, match="check.batches must be at least 1"):
        load_config(None, ["check.batches=0"])
    with pytest.raises(InputError, match="overfit_min_map"):
        load_config(None, ["check.overfit_min_map=1.5"])
    with pytest.raises(InputError, match="sweep_lr_min .* must be below"):
        validate_check_config(load_config(None, ["check.sweep_lr_min=1", "check.sweep_lr_max=0.1"]).check)


# --------------------------------------------------------------------------- the whole command


def test_run_checks_writes_json_and_an_escaped_page(synth_root, tmp_path):
    cfg = tiny("regression", synth_root)
    evil = "<script>alert(1)</script>.yaml"
    lines = []
    report = run_checks(cfg, tmp_path / "out", config_name=evil, say=lines.append)
    assert [v.name for v in report.verdicts] == ["initial loss", "overfit", "learning-rate sweep"]
    assert len(lines) == 3 and all(line.split()[0] in ("PASS", "WARN", "FAIL") for line in lines)
    data = json.loads((tmp_path / "out" / "check.json").read_text())
    assert data["config"] == evil and data["status"] == report.status
    assert len(data["checks"][1]["curves"]["loss"]["y"]) == 6
    page = (tmp_path / "out" / "check.html").read_text()
    assert "<script>" not in page and "&lt;script&gt;" in page and page.count("<img") == 2


def test_cli_check_exits_1_when_a_check_fails(synth_root, tmp_path, cli):
    sets = [a for s in TINY for a in ("--set", s)]
    bad = cli("check", "--config", LADDER / "regression.yaml", "--data", synth_root, "--threads", "1",
              "--out", tmp_path / "bad", *sets, "--set", "check.init_scale=100")
    assert bad.returncode == 1, bad.stderr
    assert "FAIL  initial loss" in bad.stdout and (tmp_path / "bad" / "check.html").is_file()


@pytest.mark.parametrize("setting, message", [
    ("check.sweep_iterations=0", "check.sweep_iterations must be at least 1"),
    ("check.sweep_lr_min=2", "must be below check.sweep_lr_max"),
    ("check.overfit_imagse=3", "did you mean check.overfit_images"),
])
def test_cli_check_bad_budgets_exit_2_with_one_line(setting, message, synth_root, tmp_path, capsys):
    from detect.cli import main

    code = main(["check", "--config", str(LADDER / "regression.yaml"), "--data", str(synth_root),
                 "--out", str(tmp_path / "u"), "--set", setting])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "u").exists()
