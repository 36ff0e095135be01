"""Backbone costs: FLOPs and params against torchvision's published metadata; ``detladder backbones``."""

import json

import pytest
from torchvision import models

from detect.backbones.measure import backbone_row, classifier_cost, count_flops
from detect.backbones.trunks import CUTS
from detect.cli import main

ARCHITECTURES = list(CUTS)


def test_the_ten_architectures_of_the_lecture():
    assert ARCHITECTURES == ["alexnet", "vgg16", "googlenet", "resnet18", "resnet50", "squeezenet1_1",
                             "densenet121", "resnext50_32x4d", "wide_resnet50_2", "mobilenet_v3_large"]


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_classifier_flops_and_params_equal_torchvision_meta(arch):
    """At 224 px our multiply-adds round to ``meta["_ops"]`` GFLOPS and params equal ``meta["num_params"]``."""
    meta = models.get_model_weights(arch).DEFAULT.meta
    params, flops = classifier_cost(arch, 224)
    assert params == meta["num_params"]
    assert round(flops / 1e9, 3) == pytest.approx(meta["_ops"], abs=1e-9)


def test_count_flops_is_multiply_adds():
    import torch

    layer = torch.nn.Linear(10, 4, bias=False)
    assert count_flops(lambda: layer(torch.zeros(3, 10))) == 3 * 10 * 4


def test_backbone_row_reads_strides_and_channels_off_the_output():
    row = backbone_row("resnet18", 128, runs=1)
    assert row["strides"] == [16] and row["out_channels"] == 256 and row["map_sides"] == [8]
    assert row["seconds"] > 0 and row["cpu_seconds"] >= 0
    fpn = backbone_row("resnet18_fpn", 128, runs=0)
    assert fpn["strides"] == [4, 8, 16, 32, 64] and fpn["out_channels"] == 256 and "seconds" not in fpn
    assert fpn["params"] > row["params"] and fpn["flops"] > row["flops"]


def test_cli_prints_the_table_and_writes_json(tmp_path, capsys):
    out = tmp_path / "b.json"
    code = main(["backbones", "--image-size", "64", "--runs", "1", "--name", "tiny", "--name", "squeezenet1_1",
                 "--json", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "tiny" in printed and "squeezenet1_1" in printed and "1 torch thread" in printed
    table = json.loads(out.read_text())
    assert [r["name"] for r in table["backbones"]] == ["tiny", "squeezenet1_1"]
    assert table["image_size"] == 64 and table["threads"] == 1
    assert table["backbones"][0]["strides"] == [8]


def test_cli_unknown_backbone_is_one_line_with_a_suggestion(capsys):
    assert main(["backbones", "--name", "densenet12"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "did you mean 'densenet121'" in err
