"""Backbones: shapes, seeded initialisation, freezing, and the offline weights rule."""

import pytest
import torch

from detect.backbones import TinyBackbone, build_backbone, imagenet_weights_file
from eval.errors import InputError


def test_tiny_backbone_stride_8_and_widths():
    net = build_backbone("tiny", width=32)
    out = net(torch.rand(2, 3, 128, 96))
    assert out.shape == (2, 128, 16, 12)
    assert net.out_channels == 128 and net.featmap_names == ["0"]
    widths = [m.out_channels for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert widths == [32, 32, 64, 64, 128, 128]


def test_same_seed_same_weights_and_global_rng_untouched():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = build_backbone("tiny", seed=7)
    after = torch.rand(1)
    assert torch.equal(before, after)  # building did not consume the caller's random stream
    b = build_backbone("tiny", seed=7)
    c = build_backbone("tiny", seed=8)
    for (ka, va), (_, vb), (_, vc) in zip(a.state_dict().items(), b.state_dict().items(), c.state_dict().items()):
        assert torch.equal(va, vb), ka
    assert not torch.equal(a[0][0].weight, c[0][0].weight)


def test_resnet50_fpn_freezes_like_torchvision():
    net = build_backbone("resnet50_fpn", norm="frozen_batch", trainable_layers=3)
    trainable = {n.split(".")[1] for n, p in net.named_parameters() if p.requires_grad and n.startswith("body.")}
    assert trainable == {"layer2", "layer3", "layer4"}
    out = net(torch.rand(1, 3, 64, 64))
    assert list(out) == ["0", "1", "2", "3", "pool"]


def test_local_weights_file_loads_and_bad_file_is_input_error(tmp_path):
    src = TinyBackbone(16)
    path = tmp_path / "tiny.pt"
    torch.save(src.state_dict(), path)
    net = build_backbone("tiny", width=16, weights=str(path), seed=99)
    assert torch.equal(net[0][0].weight, src[0][0].weight)
    with pytest.raises(InputError, match="not weights for backbone 'tiny'"):
        build_backbone("tiny", width=32, weights=str(path))
    with pytest.raises(InputError, match="not found"):
        build_backbone("tiny", weights=str(tmp_path / "missing.pt"))


def test_imagenet_weights_offline_names_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def no_download(*args, **kwargs):  # a download attempt would be a bug: fail loudly
        raise AssertionError("tried to download")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_download)
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    with pytest.raises(InputError) as info:
        build_backbone("resnet18", weights="imagenet")
    message = str(info.value)
    assert "resnet18-f37072fd.pth" in message and str(tmp_path) in message
    assert "\n" not in message
    assert imagenet_weights_file("resnet18").parent == tmp_path / "hub" / "checkpoints"


def test_unknown_backbone_is_one_line_with_a_close_match():
    with pytest.raises(InputError, match="unknown backbone 'resnt18'; did you mean 'resnet18'") as info:
        build_backbone("resnt18")
    assert "\n" not in str(info.value)


def test_build_backbone_from_a_config_section():
    from detect.config import load_config

    cfg = load_config(None, ["model.backbone.width=8", "seed=5"])
    net = build_backbone(cfg.model.backbone, seed=cfg.seed)
    assert net.out_channels == 32
    assert torch.equal(net[0][0].weight, build_backbone("tiny", width=8, seed=5)[0][0].weight)


def test_imagenet_offline_names_the_file_and_folder_for_every_architecture(tmp_path, monkeypatch):
    from detect.backbones.weights import IMAGENET_WEIGHTS

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    for name in ("googlenet", "densenet121_fpn", "squeezenet1_1"):
        with pytest.raises(InputError) as info:
            build_backbone(name, weights="imagenet")
        message = str(info.value)
        file = imagenet_weights_file(name)
        assert file.name in message and str(file.parent) in message and "\n" not in message
    assert len(IMAGENET_WEIGHTS) == 10


def test_weights_of_another_architecture_name_the_file_and_first_mismatched_key(tmp_path):
    from torchvision import models

    path = tmp_path / "squeezenet.pth"
    torch.save(models.squeezenet1_1().state_dict(), path)
    with pytest.raises(InputError) as info:
        build_backbone("alexnet", weights=str(path))
    message = str(info.value)
    assert str(path) in message and "not weights for backbone 'alexnet'" in message
    assert "first mismatched key 'features.0.weight'" in message and "(64, 3, 3, 3) in the file" in message
    assert "\n" not in message


def test_classifier_files_load_heads_ignored_and_old_densenet_keys_renamed(tmp_path):
    from torchvision import models

    with torch.random.fork_rng():
        torch.manual_seed(3)
        googlenet = models.googlenet(aux_logits=True, init_weights=True)  # the published file has aux heads
    path = tmp_path / "googlenet.pth"
    torch.save(googlenet.state_dict(), path)
    net = build_backbone("googlenet", weights=str(path), norm="frozen_batch")
    assert torch.equal(net[1].conv.weight, googlenet.conv1.conv.weight)  # net[0] is the input transform
    assert net[1].bn.eps == googlenet.conv1.bn.eps == 0.001  # frozen BN keeps the classifier's eps
    assert torch.equal(net[1].bn.running_var, googlenet.conv1.bn.running_var)

    densenet = models.densenet121()
    old = {k.replace("norm1.", "norm.1.").replace("conv2.", "conv.2."): v for k, v in densenet.state_dict().items()}
    assert any("norm.1." in k for k in old)
    path = tmp_path / "densenet121.pth"
    torch.save(old, path)
    net = build_backbone("densenet121", weights=str(path))
    assert torch.equal(net[4].denselayer1.norm1.weight, densenet.features.denseblock1.denselayer1.norm1.weight)


def test_frozen_batch_norm_and_trainable_layers():
    from torchvision.ops.misc import FrozenBatchNorm2d

    net = build_backbone("densenet121", norm="frozen_batch", trainable_layers=2)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    assert any(isinstance(m, FrozenBatchNorm2d) for m in net.modules())
    trainable = {n.split(".")[0] for n, p in net.named_parameters() if p.requires_grad}
    assert trainable == {"6", "7", "8"}  # denseblock2, transition2, denseblock3: the last two stages of the cut
    frozen = build_backbone("alexnet", trainable_layers=0)
    assert not any(p.requires_grad for p in frozen.parameters())


def test_missing_torchvision_file_says_where_torchvision_publishes_it(tmp_path, monkeypatch):
    from detect.backbones.weights import torchvision_weights_hint
    from detect.engine.checkpoint import load_safely

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    hint = torchvision_weights_hint("some/dir/fasterrcnn_resnet50_fpn_coco-258fb6c6.pth")
    assert "FasterRCNN_ResNet50_FPN_Weights.COCO_V1" in hint
    assert "https://download.pytorch.org/models/fasterrcnn_resnet50_fpn_coco-258fb6c6.pth" in hint
    assert str(tmp_path / "hub" / "checkpoints") in hint
    assert torchvision_weights_hint("my_model.pt") == ""
    with pytest.raises(InputError, match="checkpoint file not found; torchvision publishes it as FasterRCNN"):
        load_safely(tmp_path / "fasterrcnn_resnet50_fpn_coco-258fb6c6.pth")
