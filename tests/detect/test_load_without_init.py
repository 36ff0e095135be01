"""Loading a detector builds it without random init (``build_detector(init=False)``): same weights, same boxes."""

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from detect.backbones.skip_init import skipped_init
from detect.build import build_detector
from detect.config import config_to_dict, load_config
from detect.data.voc import load_image
from detect.engine.checkpoint import model_payload, save_atomic
from detect.inference import load_detector, run_detector
from eval.errors import InputError

CLASSES = ["circle", "square", "triangle", "star"]
# One config per kind of part that owns weights: RPN + RoI head, crop head with a backbone of its own, global pool.
CONFIGS = ["configs/ladder/faster_rcnn.yaml", "configs/ladder/sliding_window.yaml", "configs/ladder/regression.yaml"]


def _save(cfg, path: Path, state=None) -> Path:
    model = build_detector(cfg, len(CLASSES))
    save_atomic(model_payload(state or model.state_dict(), config_to_dict(cfg), CLASSES, "x"), path)
    return path


@pytest.mark.parametrize("config", CONFIGS)
def test_loaded_without_init_detects_exactly_as_built_the_old_way(tmp_path, synth_root, config):
    cfg = load_config(config, ["test.score_thresh=0.0", "seed=3"])
    path = _save(cfg, tmp_path / "model.pt")
    loaded, cfg, _ = load_detector(path)
    old = build_detector(cfg, len(CLASSES))  # seeded init, then the file copied over it
    old.load_state_dict(torch.load(path, weights_only=True)["state_dict"])
    old.eval()
    for (key, value), (key2, value2) in zip(old.state_dict().items(), loaded.state_dict().items()):
        assert key == key2 and torch.equal(value, value2), key
    assert [p.requires_grad for p in old.parameters()] == [p.requires_grad for p in loaded.parameters()]
    images = [load_image(p) for p in sorted((synth_root / "JPEGImages").glob("*.jpg"))[:2]]
    got, _ = run_detector(loaded, cfg, images)
    want, _ = run_detector(old, cfg, images)
    assert sum(len(d["scores"]) for d in want) > 0
    for a, b in zip(got, want):
        for field in ("boxes", "scores", "labels"):
            np.testing.assert_array_equal(a[field], b[field])


def test_skipped_init_leaves_seeded_training_init_unchanged():
    cfg = load_config("configs/ladder/faster_rcnn.yaml", ["seed=5"])
    before = build_detector(cfg, 3).state_dict()
    fills = {name: getattr(nn.init, name) for name in ("kaiming_uniform_", "normal_", "constant_")}
    build_detector(cfg, 3, init=False)
    with pytest.raises(RuntimeError), skipped_init():  # restored on the way out of an error too
        raise RuntimeError("boom")
    assert all(getattr(nn.init, name) is fn for name, fn in fills.items())
    after = build_detector(cfg, 3).state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_a_missing_key_is_refused_not_left_uninitialised(tmp_path):
    cfg = load_config("configs/ladder/faster_rcnn.yaml", ["seed=3"])
    state = build_detector(cfg, len(CLASSES)).state_dict()
    dropped = next(k for k in state if "roi_heads" in k or "head" in k)
    path = _save(cfg, tmp_path / "model.pt", {k: v for k, v in state.items() if k != dropped})
    with pytest.raises(InputError, match="do not fit"):
        load_detector(path)


def test_backbone_weights_file_of_the_config_is_not_read(tmp_path):
    """The checkpoint holds the backbone: a config naming a backbone file that is not here still loads."""
    cfg = load_config("configs/ladder/faster_rcnn.yaml", ["seed=3"])
    path = _save(cfg, tmp_path / "model.pt")
    payload = torch.load(path, weights_only=True)
    payload["config"]["model"]["backbone"]["weights"] = str(tmp_path / "absent_backbone.pth")
    save_atomic(payload, path)
    model, loaded_cfg, _ = load_detector(path)
    assert loaded_cfg.model.backbone.weights == str(tmp_path / "absent_backbone.pth")
    assert all(torch.equal(v, payload["state_dict"][k]) for k, v in model.state_dict().items())


def test_fused_frozen_norm_is_torchvisions_frozen_norm():
    from torchvision.ops.misc import FrozenBatchNorm2d

    from detect.backbones.frozen_norm import FusedFrozenBatchNorm2d, fuse_frozen_norms

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3), FrozenBatchNorm2d(8, eps=0.0), nn.ReLU(), FrozenBatchNorm2d(8))
    for norm in (net[1], net[3]):
        norm.weight.uniform_(0.5, 2.0), norm.bias.normal_(), norm.running_mean.normal_(), norm.running_var.uniform_(0.5, 2.0)
    x = torch.randn(2, 3, 20, 24)
    want, keys = net(x), list(net.state_dict())
    assert fuse_frozen_norms(net) == 2 and isinstance(net[1], FusedFrozenBatchNorm2d)
    torch.testing.assert_close(net(x), want, rtol=1e-6, atol=1e-6)
    assert list(net.state_dict()) == keys and net[1].eps == 0.0


def test_coco_config_loads_fused_and_detects_as_built(tmp_path):
    """The R50-FPN COCO layout: loaded (no init, fused norms) against built + loaded, small image."""
    overrides = ["data.image_size=160", "data.max_size=160", "test.score_thresh=0.0"]
    cfg = load_config("configs/coco/faster_rcnn_r50_fpn.yaml", overrides)
    torch.manual_seed(0)
    ref = build_detector(cfg, len(cfg.classes)).eval()
    state = ref.state_dict()
    for key, value in state.items():  # frozen statistics that are not the identity
        if key.endswith("running_var"):
            value.uniform_(0.5, 2.0)
        elif key.endswith("running_mean"):
            value.normal_(0.0, 0.1)
    raw = tmp_path / "coco.pth"
    torch.save(state, raw)
    ref.load_state_dict(state)
    model, _, names = load_detector(raw, cfg)
    assert names == cfg.classes
    image = np.random.default_rng(0).integers(0, 256, (150, 140, 3), dtype=np.uint8)
    (got,), _ = run_detector(model, cfg, [image])
    (want,), _ = run_detector(ref, cfg, [image])
    assert len(want["scores"]) > 0
    np.testing.assert_allclose(got["boxes"], want["boxes"], atol=1e-3)
    np.testing.assert_allclose(got["scores"], want["scores"], atol=1e-5)
    np.testing.assert_array_equal(got["labels"], want["labels"])
