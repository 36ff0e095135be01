"""What the command line tells a user: Ctrl-C, --version, --debug in --help, where files went, help examples."""

from __future__ import annotations

import importlib.metadata
import json
import re
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from detect.cli import app, interrupted_message, main

REPO = Path(__file__).resolve().parents[1]


def _command_paths(group, prefix=()):
    """Every command of the click tree under ``group`` as a tuple of names, groups included."""
    yield prefix
    for name, command in getattr(group, "commands", {}).items():
        yield from _command_paths(command, prefix + (name,))


def _all_help() -> dict[tuple[str, ...], str]:
    runner = CliRunner()
    texts = {}
    for path in _command_paths(typer.main.get_command(app)):
        result = runner.invoke(app, [*path, "--help"], prog_name="detladder")
        assert result.exit_code == 0, (path, result.output)
        texts[path] = result.output
    return texts


def test_every_config_named_in_a_help_text_exists():
    texts = _all_help()
    assert {("eval",), ("data", "synth"), ("proposals", "eval"), ("train",), ("detect",)} <= set(texts)
    named = {m for text in texts.values() for m in re.findall(r"configs/[\w./-]+?\.ya?ml", text)}
    assert "configs/ladder/faster_rcnn.yaml" in named  # the pattern does find the examples
    assert sorted(p for p in named if not (REPO / p).is_file()) == []


def test_debug_and_version_are_in_every_help_and_version_prints_it(cli):
    for path, text in _all_help().items():
        assert "--debug" in " ".join(text.split()), path
    top = cli("--help")
    assert "--version" in top.stdout and "--debug" in top.stdout
    out = cli("--version")
    assert out.returncode == 0 and out.stderr == ""
    assert out.stdout.strip() == f"detladder {importlib.metadata.version('detladder')}"


def test_debug_after_the_command_still_shows_the_traceback(cli, tmp_path):
    out = cli("data", "info", tmp_path / "nowhere", "--debug")
    assert out.returncode != 0 and "Traceback" in out.stderr


def test_ctrl_c_inside_a_command_goes_through_typer_and_prints_one_line(monkeypatch, capsys, tmp_path):
    """Typer turns KeyboardInterrupt into Exit(130); main() must still say so."""
    import detect.data.synth

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(detect.data.synth, "make_synthetic_voc", interrupted)
    assert main(["data", "synth", "--out", str(tmp_path / "d")]) == 130
    captured = capsys.readouterr()
    assert captured.err == "detladder: interrupted\n" and captured.out == ""


def test_sigint_stops_synth_with_one_line_exit_130_and_leaves_nothing(tmp_path):
    """A real Ctrl-C (SIGINT) in a real process: exit 130, one line, no half-written dataset."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "detect.cli", "data", "synth", "--out", str(tmp_path / "d"), "--train", "100000"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # a background shell may ignore SIGINT
    )
    try:
        deadline = time.monotonic() + 120
        while not any(tmp_path.glob(".d.synth-*/JPEGImages/*.jpg")):  # images are being written
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130 and err == "detladder: interrupted\n" and out == ""
    assert list(tmp_path.iterdir()) == []


def test_interrupted_messages_say_how_to_continue(tmp_path):
    run = tmp_path / "run"
    args = ["train", "--config", "configs/ladder/regression.yaml", "--out", str(run), "--set", "train.lr=0.1"]
    assert interrupted_message(args) == ("interrupted before the first checkpoint; "
                                         "run the same command again to start over")
    run.mkdir()
    (run / "checkpoint.pt").write_bytes(b"")
    expected = f"interrupted; resume with: detladder train --config configs/ladder/regression.yaml --out {run} " \
               "--set train.lr=0.1 --resume"
    assert interrupted_message(args) == expected
    assert interrupted_message(args + ["--resume"]) == expected  # not twice
    spaced = ["train", "--config", "my configs/r.yaml", f"--out={run}"]
    assert interrupted_message(spaced).endswith(f"detladder train --config 'my configs/r.yaml' --out={run} --resume")
    for command in (["compare", "--data", "d"], ["demo"]):
        assert "run the same command again to continue from what finished" in interrupted_message(command)
    assert interrupted_message(["eval", "--gt", "x"]) == "interrupted"


def test_eval_says_which_files_it_wrote(tmp_path, monkeypatch, capfd, synth_root):
    from eval.result_files import write_voc_results
    from eval.types import EvalResult

    dets = tmp_path / "dets"
    ids = (synth_root / "ImageSets" / "Main" / "test.txt").read_text().split()
    one_box = {"boxes": np.array([[10.0, 10.0, 60.0, 60.0]]), "scores": np.array([0.5]), "labels": np.array([0])}
    write_voc_results(dets, "test", ids, [one_box for _ in ids], ["circle", "square", "triangle", "star"])
    assert main(["eval", "--gt", str(synth_root), "--dets", str(dets), "--protocol", "voc07",
                 "--json", str(tmp_path / "ap.json")]) == 0
    assert capfd.readouterr().out.splitlines()[-1] == f"wrote {tmp_path / 'ap.json'}"

    def evaluate_model(config, weights, data, split, protocol, json_out, **kwargs):
        json_out.with_name("m_voc").mkdir()
        json_out.with_name("m_coco.json").write_text("[]")
        json_out.write_text("{}")
        return EvalResult(protocol=protocol, mAP=0.5, per_class={"cat": 0.5})

    def result_paths(out):
        return out.with_name(f"{out.stem}_voc"), out.with_name(f"{out.stem}_coco.json")

    monkeypatch.setitem(sys.modules, "detect.model_eval",
                        types.SimpleNamespace(evaluate_model=evaluate_model, result_paths=result_paths))
    assert main(["eval", "--config", "c.yaml", "--weights", "w.pt", "--data", "d", "--split", "test",
                 "--protocol", "voc07", "--json", str(tmp_path / "m.json")]) == 0
    assert capfd.readouterr().out.splitlines()[-1] == (
        f"wrote {tmp_path / 'm.json'}, {tmp_path / 'm_voc'}/ (devkit result files), {tmp_path / 'm_coco.json'}")


def test_real_result_paths_match_what_eval_reports():
    """The stand-in above names the files as detect.model_eval does."""
    model_eval = pytest.importorskip("detect.model_eval")
    assert model_eval.result_paths(Path("r/m.json")) == (Path("r/m_voc"), Path("r/m_coco.json"))


def test_proposals_eval_says_where_its_json_went(cli, synth_root, tmp_path):
    js = tmp_path / "sw.json"
    res = cli("proposals", "eval", "--method", "sliding_window", "--data", synth_root, "--split", "test",
              "--json", js, "--scales", "64", "--ratios", "1", "--stride", "32")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().endswith(f"-> {js}") and json.loads(js.read_text())["boxes_per_image"] == 16
