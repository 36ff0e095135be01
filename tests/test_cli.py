"""The command line contract: exit codes, one-line errors, no tracebacks, help with examples."""

from __future__ import annotations

import shutil


def test_help_lists_commands_and_every_command_has_an_example(cli):
    out = cli("--help")
    assert out.returncode == 0 and "data" in out.stdout
    for args in (("data", "synth"), ("data", "info")):
        sub = cli(*args, "--help")
        assert sub.returncode == 0 and "Example: detladder" in sub.stdout, sub.stdout


def test_synth_then_info(cli, tmp_path):
    out = cli("data", "synth", "--out", tmp_path / "d", "--train", "5", "--test", "3", "--seed", "1")
    assert out.returncode == 0, out.stderr
    assert "wrote 8 images" in out.stdout
    info = cli("data", "info", tmp_path / "d", "--split", "test")
    assert info.returncode == 0, info.stderr
    assert "3 usable images" in info.stdout and "circle" in info.stdout and "median" in info.stdout
    assert info.stderr == ""


def test_info_on_a_hostile_xml_exits_2_with_one_line_naming_the_file(cli, synth_root, tmp_path):
    root = tmp_path / "voc"
    shutil.copytree(synth_root, root)
    first = (root / "ImageSets" / "Main" / "test.txt").read_text().split()[0]
    (root / "Annotations" / f"{first}.xml").write_text(
        '<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><annotation>&x;</annotation>'
    )
    out = cli("data", "info", root, "--split", "test")
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and f"{first}.xml" in lines[0] and "refused unsafe XML" in lines[0]
    assert "Traceback" not in out.stderr and "root:" not in out.stderr


def test_bad_usage_and_bad_input_exit_2_without_traceback(cli, tmp_path):
    missing = cli("data", "synth")
    assert missing.returncode == 2 and "--out" in missing.stderr and "Traceback" not in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
    nowhere = cli("data", "info", tmp_path / "nowhere")
    assert nowhere.returncode == 2
    assert nowhere.stderr.strip() == f"detladder: error: {tmp_path / 'nowhere'}: dataset root not found"
    nosplit = cli("data", "info", tmp_path, "--split", "val")
    assert nosplit.returncode == 2 and "val.txt: split file not found" in nosplit.stderr


def test_debug_shows_the_traceback(cli, tmp_path):
    out = cli("--debug", "data", "info", tmp_path / "nowhere")
    assert out.returncode != 0 and "Traceback" in out.stderr
