"""Backbone costs: FLOPs and params against torchvision's published metadata; ``detladder backbones``."""

import json
from pathlib import Path

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


def test_compare_counts_the_network_flops_of_a_detector(synth_root):
    from detect.backbones import build_backbone
    from detect.backbones.measure import module_flops
    from detect.build import build_detector
    from detect.compare_rows import ProposalMemo, _network_flops
    from detect.config import load_config
    from detect.data.voc import VOCDataset

    dataset = VOCDataset(synth_root, "test")
    config = load_config("configs/backbones/faster_rcnn_squeezenet1_1.yaml", [])
    model = build_detector(config, num_classes=len(dataset.class_names)).eval()
    flops = _network_flops(model, config, dataset, ProposalMemo())
    backbone = module_flops(build_backbone("squeezenet1_1"), 128)  # the synthetic images are 128 px squares
    rpn_conv = 512 * 512 * 9 * 8 * 8  # 3x3 conv on the 8x8 stride-16 map
    roi_mlp = 150 * (512 * 7 * 7 * 128 + 128 * 128)  # at most 150 test proposals through the two-layer MLP
    # + the small terms: RPN 1x1 convs, RoIAlign as matmuls (roi_align_matmul), the class and box predictors
    assert backbone + rpn_conv < flops < 1.2 * (backbone + rpn_conv + roi_mlp)


def _report_with_flops(tmp_path, flops):
    import shutil

    fixture = Path(__file__).resolve().parents[1] / "data" / "report"
    root = tmp_path / "in"
    shutil.copytree(fixture / "examples", root / "examples")
    metrics = json.loads((fixture / "metrics.json").read_text())
    for variant, value in zip(metrics["variants"], flops):
        variant["flops"] = value
    (root / "metrics.json").write_text(json.dumps(metrics))
    from eval.report import render_report

    return render_report(root / "metrics.json", tmp_path / "out")


def test_report_shows_gflops_and_the_flops_scatter(tmp_path):
    paths = _report_with_flops(tmp_path, [1_500_000_000, 26_000_000_000, None, 300_000_000, 2_000_000])
    markdown = paths.markdown.read_text()
    assert "GFLOPs/img" in markdown and "| 1.5 |" in markdown and "| 26 |" in markdown
    assert "Computation versus accuracy" in markdown and "figures/flops_accuracy.png" in markdown
    assert (paths.markdown.parent / "figures" / "flops_accuracy.png").is_file()
    assert "Computation versus accuracy" in paths.html.read_text()


def test_report_without_flops_has_no_scatter(tmp_path):
    paths = _report_with_flops(tmp_path, [])
    markdown = paths.markdown.read_text()
    assert "GFLOPs/img" in markdown and "flops_accuracy.png" not in markdown
