"""Training precision and layout on the CPU: NHWC gives float32's numbers, bfloat16 autocast only where native."""

import copy

import pytest
import torch

from detect.build import build_detector
from detect.config import load_config
from detect.data.training import TrainingSet, collate
from detect.data.voc import VOCDataset
from detect.engine import precision as precision_module
from detect.engine.checkpoint import load_safely
from detect.engine.precision import Precision, training_precision
from detect.train import train

SMALL = ["model.backbone.width=8", "train.batch_size=2", "train.warmup_iterations=1", "train.checkpoint_every=100",
         "model.rpn.pre_nms_top_n_train=100", "model.rpn.post_nms_top_n_train=50"]
NATIVE_BF16 = precision_module.cpu_has_native_bf16()


def _losses_and_grads(model, batch, precision=None):
    images, targets, proposals, _ = batch
    torch.manual_seed(0)  # the samplers draw from the global RNG
    with (precision.autocast() if precision else torch.autocast("cpu", enabled=False)):
        losses = model(images, targets, proposals)
    sum(losses.values()).backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return {k: float(v.detach()) for k, v in losses.items()}, grads


@pytest.fixture(scope="module")
def batch_and_config(synth_root):
    config = load_config("configs/ladder/faster_rcnn.yaml", SMALL + [f"data.root={synth_root}"])
    voc = VOCDataset(synth_root, "train")
    data = TrainingSet(voc)
    return collate([data[(i, False)] for i in range(2)]), config, len(voc.class_names)


def test_channels_last_training_step_equals_the_contiguous_one(batch_and_config):
    batch, config, classes = batch_and_config
    nchw = build_detector(config, classes).train()
    nhwc = copy.deepcopy(nchw).to(memory_format=torch.channels_last)
    conv = next(m for m in nhwc.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    loss_a, grads_a = _losses_and_grads(nchw, batch)
    loss_b, grads_b = _losses_and_grads(nhwc, batch)
    assert loss_b == pytest.approx(loss_a, rel=1e-5, abs=1e-6)
    assert grads_a.keys() == grads_b.keys()
    for name, grad in grads_a.items():
        torch.testing.assert_close(grads_b[name], grad, rtol=1e-4, atol=1e-5, msg=name)


def test_precision_follows_the_config_and_the_hardware(monkeypatch):
    config = load_config("configs/ladder/faster_rcnn.yaml", ["train.cpu_amp=true"]).train
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    monkeypatch.setattr(precision_module, "cpu_has_native_bf16", lambda: True)
    assert training_precision(config, cpu).dtype == torch.bfloat16
    assert not training_precision(config, cpu).needs_scaler  # bfloat16 has float32's exponent range
    config.cpu_amp = False
    assert training_precision(config, cpu).dtype is None
    config.cpu_amp = True
    monkeypatch.setattr(precision_module, "cpu_has_native_bf16", lambda: False)  # emulated bf16 would be slower
    assert training_precision(config, cpu).name == "float32"
    assert training_precision(config, cuda).dtype == torch.float16 and training_precision(config, cuda).needs_scaler
    config.amp = False
    assert training_precision(config, cuda).dtype is None


@pytest.mark.skipif(not NATIVE_BF16, reason="this CPU has no native bfloat16")
def test_bfloat16_step_stays_close_to_float32(batch_and_config):
    batch, config, classes = batch_and_config
    model = build_detector(config, classes).train()
    fp32, _ = _losses_and_grads(copy.deepcopy(model), batch)
    bf16, _ = _losses_and_grads(model, batch, Precision("cpu", torch.bfloat16))
    for key, value in fp32.items():  # bfloat16 keeps 8 bits of mantissa: ~0.4% per rounding
        assert bf16[key] == pytest.approx(value, rel=5e-2, abs=2e-3), key


@pytest.mark.skipif(not NATIVE_BF16, reason="this CPU has no native bfloat16")
def test_bfloat16_training_resumes_bit_exactly(synth_root, tmp_path):
    config = load_config("configs/ladder/faster_rcnn.yaml", SMALL + ["train.cpu_amp=true", "train.iterations=4",
                                                                      "train.checkpoint_every=2"])
    full = train(config, tmp_path / "full", data_root=synth_root)
    assert full.precision == "bfloat16 autocast"
    train(config, tmp_path / "resumed", data_root=synth_root, stop_at=3)
    resumed = train(config, tmp_path / "resumed", data_root=synth_root, resume=True)
    a, b = load_safely(full.model_path)["state_dict"], load_safely(resumed.model_path)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)
