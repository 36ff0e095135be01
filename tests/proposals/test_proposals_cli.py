"""``detladder proposals run`` / ``eval`` on the synthetic dataset."""

from __future__ import annotations

import json


def test_run_then_rerun_uses_the_cache(cli, synth_root, tmp_path):
    out = tmp_path / "cache"
    args = ("proposals", "run", "--method", "selective_search", "--data", synth_root, "--split", "test", "--out", out)
    first = cli(*args)
    assert first.returncode == 0, first.stderr
    assert "8 images (8 computed, 0 from cache)" in first.stdout
    assert len(list(out.glob("*.npz"))) == 8
    again = cli(*args)
    assert "(0 computed, 8 from cache)" in again.stdout
    other = cli(*args, "--mode", "quality")
    assert other.returncode == 2
    assert other.stderr.count("\n") == 1 and "mode='fast', not mode='quality'" in other.stderr


def test_eval_writes_recall_json_and_plot(cli, synth_root, tmp_path):
    js, png = tmp_path / "r.json", tmp_path / "r.png"
    res = cli("proposals", "eval", "--method", "selective_search", "--data", synth_root, "--split", "test",
              "--json", js, "--plot", png)
    assert res.returncode == 0, res.stderr
    data = json.loads(js.read_text())
    assert set(data["recall"]["0.5"]) == {"10", "100", "300", "1000", "2000", "all"}
    assert data["recall"]["0.5"]["all"] >= 0.9  # flat synthetic shapes are easy for Selective Search
    assert data["recall"]["0.5"]["10"] <= data["recall"]["0.5"]["all"]
    assert 0 < data["mabo"] <= 1 and data["boxes_per_image"] > 10 and data["seconds_per_image"] > 0
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_sliding_window_eval_counts_windows(cli, synth_root, tmp_path):
    js = tmp_path / "sw.json"
    res = cli("proposals", "eval", "--method", "sliding_window", "--data", synth_root, "--split", "test",
              "--json", js, "--scales", "32,64", "--ratios", "1", "--stride", "16")
    assert res.returncode == 0, res.stderr
    assert json.loads(js.read_text())["boxes_per_image"] == 2 * 1 * 8 * 8  # 128 px / 16 = 8 per axis


def test_bad_input_is_one_line_exit_2(cli, tmp_path):
    res = cli("proposals", "run", "--method", "selective_search", "--data", tmp_path / "nope", "--split", "test",
              "--out", tmp_path / "c")
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "nope" in res.stderr
    res = cli("proposals", "run", "--method", "edge_boxes", "--data", tmp_path, "--split", "test", "--out", tmp_path)
    assert res.returncode == 2 and "selective_search or sliding_window" in res.stderr
