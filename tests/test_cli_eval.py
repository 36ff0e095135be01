"""``detladder eval``: both forms, the JSON it writes, one-line errors with exit 2, and no torch on start-up."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from detect.cli import main
from eval.result_files import read_voc_ground_truth, write_voc_results

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "tests" / "data" / "coco_val2014_sample"
PUBLISHED = [0.503647, 0.696973, 0.571667, 0.593252, 0.557991, 0.489363,
             0.386813, 0.593680, 0.595353, 0.654764, 0.603130, 0.553744]


def test_coco_files_give_pycocotools_numbers_without_importing_torch(tmp_path):
    code = (
        "import sys\n"
        "from detect.cli import main\n"
        f"rc = main(['eval', '--gt', {str(SAMPLE / 'instances.json')!r}, '--dets', {str(SAMPLE / 'results.json')!r},"
        f" '--protocol', 'coco', '--json', {str(tmp_path / 'out.json')!r}])\n"
        "heavy = [m for m in ('torch', 'torchvision', 'matplotlib', 'cv2', 'skimage', 'pycocotools') if m in sys.modules]\n"
        "print('RC', rc, 'HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert "RC 0 HEAVY []" in out.stdout, out.stdout + out.stderr
    assert out.stderr == ""
    assert "toothbrush" in out.stdout and "mAP (coco): 0.5036" in out.stdout
    payload = json.loads((tmp_path / "out.json").read_text())
    assert list(payload) == ["protocol", "mAP", "per_class", "stats"] and payload["protocol"] == "coco"
    np.testing.assert_allclose(payload["stats"], PUBLISHED, atol=1e-6)
    assert payload["mAP"] == payload["stats"][0] and len(payload["per_class"]) == 80
    assert payload["per_class"]["hair drier"] is None  # a category without objects


def test_pycocotools_backend_gives_the_same_json(tmp_path):
    args = ["eval", "--gt", str(SAMPLE / "instances.json"), "--dets", str(SAMPLE / "results.json"), "--protocol", "coco"]
    assert main([*args, "--json", str(tmp_path / "ours.json")]) == 0
    assert main([*args, "--backend", "pycocotools", "--json", str(tmp_path / "ref.json")]) == 0
    ours, ref = (json.loads((tmp_path / n).read_text()) for n in ("ours.json", "ref.json"))
    np.testing.assert_allclose(ours["stats"], ref["stats"], atol=1e-9, rtol=0)
    assert ours["per_class"].keys() == ref["per_class"].keys()


def test_voc_root_and_devkit_files_end_to_end(cli, synth_root, tmp_path):
    truth = read_voc_ground_truth(synth_root, "test")
    perfect = [{"boxes": g["boxes"], "scores": np.linspace(0.9, 0.5, len(g["boxes"])), "labels": g["labels"]}
               for g in truth.gts]
    write_voc_results(tmp_path / "res", "test", truth.image_ids, perfect, truth.class_names)
    out = cli("eval", "--gt", synth_root, "--dets", tmp_path / "res", "--split", "test", "--protocol", "voc07",
              "--json", tmp_path / "ap.json")
    assert out.returncode == 0, out.stderr
    payload = json.loads((tmp_path / "ap.json").read_text())
    assert list(payload) == ["protocol", "mAP", "per_class"] and payload["protocol"] == "voc07"
    with_objects = {truth.class_names[k] for g in truth.gts for k, d in zip(g["labels"], g["difficult"]) if not d}
    assert {k for k, v in payload["per_class"].items() if v is not None} == with_objects
    assert payload["mAP"] == pytest.approx(1.0) and "mAP (voc07): 1.0000" in out.stdout


def _one_line_exit_2(capfd, argv) -> str:
    assert main(argv) == 2
    err = capfd.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].strip() and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("case", ["truncated_json", "unknown_image", "unknown_category", "zero_width", "bad_xml",
                                  "missing_xml", "missing_split", "five_fields", "nan_score", "inverted",
                                  "voc_unknown_image"])
def test_bad_input_exits_2_with_one_line_naming_the_file(capfd, tmp_path, synth_root, case):
    import shutil

    gt_rows = json.loads((SAMPLE / "instances.json").read_text())
    res_rows = json.loads((SAMPLE / "results.json").read_text())
    gt, res = tmp_path / "gt.json", tmp_path / "res.json"
    gt.write_text(json.dumps(gt_rows))
    voc = tmp_path / "voc"
    shutil.copytree(synth_root, voc)
    test_ids = (voc / "ImageSets" / "Main" / "test.txt").read_text().split()
    resdir = tmp_path / "vocres"
    resdir.mkdir()
    first_class = (voc / "classes.txt").read_text().split()[0]
    voc_file = resdir / f"comp4_det_test_{first_class}.txt"
    voc_file.write_text(f"{test_ids[0]} 0.9 1 1 10 10\n")
    expected = {"truncated_json": ("res.json", "malformed"), "unknown_image": ("res.json", "image id 31337"),
                "unknown_category": ("res.json", "category id 1000"), "zero_width": ("res.json", "w <= 0"),
                "bad_xml": (f"{test_ids[1]}.xml", "malformed XML"), "missing_xml": ("424242.xml", "not found"),
                "missing_split": ("val.txt", "split file not found"), "five_fields": (voc_file.name, "line 2"),
                "nan_score": (voc_file.name, "line 1: NaN"), "inverted": (voc_file.name, "line 1: inverted"),
                "voc_unknown_image": (voc_file.name, "image id '424242'")}[case]
    res.write_text(json.dumps(res_rows))
    split = "test"
    if case == "truncated_json":
        res.write_text(json.dumps(res_rows)[:-100])
    elif case in ("unknown_image", "unknown_category", "zero_width"):
        key, value = {"unknown_image": ("image_id", 31337), "unknown_category": ("category_id", 1000),
                      "zero_width": ("bbox", [3.0, 4.0, 0.0, 9.0])}[case]
        res_rows[5][key] = value
        res.write_text(json.dumps(res_rows))
    elif case == "bad_xml":
        (voc / "Annotations" / f"{test_ids[1]}.xml").write_text("<annotation><object>")
    elif case == "missing_xml":
        (voc / "ImageSets" / "Main" / "test.txt").write_text("\n".join(test_ids + ["424242"]) + "\n")
    elif case == "missing_split":
        split = "val"
    elif case == "five_fields":
        voc_file.write_text(f"{test_ids[0]} 0.9 1 1 10 10\n{test_ids[0]} 0.9 1 1 10\n")
    elif case == "nan_score":
        voc_file.write_text(f"{test_ids[0]} nan 1 1 10 10\n")
    elif case == "inverted":
        voc_file.write_text(f"{test_ids[0]} 0.9 10 1 9 10\n")
    elif case == "voc_unknown_image":
        voc_file.write_text(f"424242 0.9 1 1 10 10\n")
    coco = case in ("truncated_json", "unknown_image", "unknown_category", "zero_width")
    argv = ["eval", "--gt", str(gt if coco else voc), "--dets", str(res if coco else resdir), "--split", split,
            "--protocol", "coco" if coco else "voc12", "--json", str(tmp_path / "out.json")]
    line = _one_line_exit_2(capfd, argv)
    assert expected[0] in line and expected[1] in line, line
    assert not (tmp_path / "out.json").exists()


@pytest.mark.parametrize("argv", [
    ["eval", "--protocol", "voc07"],
    ["eval", "--gt", "a", "--dets", "b", "--config", "c.yaml", "--protocol", "voc07"],
    ["eval", "--gt", str(SAMPLE / "instances.json"), "--protocol", "coco"],
    ["eval", "--gt", str(SAMPLE / "instances.json"), "--dets", str(SAMPLE / "results.json"), "--protocol", "voc2010"],
    ["eval", "--gt", str(SAMPLE / "instances.json"), "--dets", str(SAMPLE / "results.json"), "--protocol", "voc07",
     "--backend", "pycocotools"],
])
def test_usage_errors_exit_2_with_one_line(capfd, argv):
    _one_line_exit_2(capfd, argv)


def test_model_form_calls_evaluate_model(monkeypatch, tmp_path, capfd):
    from eval.types import EvalResult

    calls = []

    def evaluate_model(config_path, weights, data_root, split, protocol, json_out, overrides=(), device=None,
                       progress=False):
        calls.append((str(config_path), str(weights), str(data_root), split, protocol, str(json_out), overrides, device))
        return EvalResult(protocol=protocol, mAP=0.25, per_class={"cat": 0.25, "dog": None})

    def result_paths(out):
        return out.with_name(f"{out.stem}_voc"), out.with_name(f"{out.stem}_coco.json")

    monkeypatch.setitem(sys.modules, "detect.model_eval",
                        types.SimpleNamespace(evaluate_model=evaluate_model, result_paths=result_paths))
    rc = main(["eval", "--config", "c.yaml", "--weights", "m.pt", "--data", "root", "--split", "val", "--protocol",
               "voc12", "--json", str(tmp_path / "o.json"), "--set", "test.score_thresh=0.1", "--device", "cpu"])
    assert rc == 0
    assert calls == [("c.yaml", "m.pt", "root", "val", "voc12", str(tmp_path / "o.json"), ["test.score_thresh=0.1"], "cpu")]
    assert json.loads((tmp_path / "o.json").read_text()) == {"protocol": "voc12", "mAP": 0.25,
                                                             "per_class": {"cat": 0.25, "dog": None}}
    assert "mAP (voc12): 0.2500" in capfd.readouterr().out


def test_errors_option_adds_tide_errors_to_the_json_and_prints_them(tmp_path, capsys):
    out = tmp_path / "out.json"
    rc = main(["eval", "--gt", str(SAMPLE / "instances.json"), "--dets", str(SAMPLE / "results.json"),
               "--protocol", "voc07", "--errors", "--json", str(out)])
    assert rc == 0
    payload = json.loads(out.read_text())
    errors = payload["errors"]
    assert list(errors["main"]) == ["Cls", "Loc", "Both", "Dupe", "Bkg", "Miss"]
    assert list(errors["special"]) == ["FalsePos", "FalseNeg"]
    assert errors["main"]["Cls"] == pytest.approx(0.222460397, abs=1e-8)  # tidecv 1.0.1 prints 22.2460397
    assert "TIDE errors" in capsys.readouterr().out and payload["mAP"] > 0.6


def test_errors_option_in_the_model_form_reads_the_written_devkit_files(tmp_path, synth_root, capsys):
    from detect.build import build_detector
    from detect.config import config_to_dict, load_config
    from detect.engine.checkpoint import model_payload, save_atomic
    from eval.error_analysis import analyse_error_files

    cfg = load_config(REPO / "configs/ladder/faster_rcnn.yaml", ["test.score_thresh=0.0", "test.detections_per_image=5"])
    names = ["circle", "square", "triangle", "star"]
    weights = tmp_path / "model.pt"  # an untrained model: errors of every kind
    save_atomic(model_payload(build_detector(cfg, len(names)).state_dict(), config_to_dict(cfg), names, "faster_rcnn"),
                weights)
    out = tmp_path / "m.json"
    rc = main(["eval", "--config", str(REPO / "configs/ladder/faster_rcnn.yaml"), "--weights", str(weights),
               "--data", str(synth_root), "--split", "test", "--protocol", "voc12", "--json", str(out), "--errors",
               "--device", "cpu"])
    assert rc == 0
    errors = json.loads(out.read_text())["errors"]
    assert errors == analyse_error_files(synth_root, tmp_path / "m_voc", "test").to_json()
    assert errors["counts"]["Miss"] + errors["counts"]["Loc"] + errors["counts"]["Cls"] > 0
    assert "TIDE errors" in capsys.readouterr().out


@pytest.mark.parametrize("per_class, stats, m_ap", [
    ({"cat": 0.5, "dog": None}, None, 0.5),
    ({"a": 0.123456}, [0.1] * 12, 0.123456),
    ({"a_rather_long_class_name_of_some_length": 1.0, "b": 0.0}, [0.25] * 12, 0.5),
    ({"x" * 30: 0.5, "y" * 3: None}, None, float("nan")),
    ({"person": None}, None, float("nan")),
])
@pytest.mark.parametrize("protocol", ["coco", "voc07", "voc12"])
def test_plain_table_is_the_text_rich_prints(monkeypatch, per_class, stats, m_ap, protocol):
    """Without Rich (the fast route) the table is byte for byte what Rich prints to a pipe."""
    import io

    from detect.cli import eval_files

    for name in eval_files._RICH_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    result = types.SimpleNamespace(protocol=protocol, per_class=per_class, stats=stats, mAP=m_ap)
    outputs = []
    for plain in (True, False):
        buffer = io.BytesIO()
        monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(buffer, encoding="utf-8"))
        if not plain:
            monkeypatch.setattr(eval_files, "plain_table", lambda result: None)
        else:
            assert eval_files.plain_table(result) is not None
        eval_files.print_table(result)
        sys.stdout.flush()
        outputs.append(buffer.getvalue())
    assert outputs[0] == outputs[1]


def test_plain_table_leaves_markup_wide_tables_and_colour_to_rich(monkeypatch):
    import io

    from detect.cli import eval_files

    for name in eval_files._RICH_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(io.BytesIO(), encoding="utf-8"))
    make = lambda per_class: types.SimpleNamespace(protocol="coco", per_class=per_class, stats=None, mAP=0.5)  # noqa
    assert eval_files.plain_table(make({"cat": 0.5})) is not None
    for per_class in ({"[bold]cat": 0.5}, {"caf\u00e9": 0.5}, {"x" * 80: 0.5}, {}):
        assert eval_files.plain_table(make(per_class)) is None
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert eval_files.plain_table(make({"cat": 0.5})) is None
