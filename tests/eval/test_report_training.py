"""The report's training section: table, generated sentences and the curves figure, escaped like the rest."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from eval.report import render_report

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "report"
EVIL = "<b>x</b>"


def _with_training(tmp_path: Path) -> Path:
    root = tmp_path / "in"
    shutil.copytree(FIXTURE / "examples", root / "examples")
    metrics = json.loads((FIXTURE / "metrics.json").read_text())
    ok = [v for v in metrics["variants"] if v["status"] == "ok"]
    falling = [1.0 / (1 + 0.1 * i) for i in range(100)]
    ok[0]["training"] = {"iterations": 100, "seconds": [float(i) for i in range(100)], "loss": falling,
                         "val_seconds": [50.0, 99.0], "val_mAP": [0.2, 0.4],
                         "last_tenth_change": -0.09, "flattened": False}
    ok[1]["name"] = EVIL
    ok[1]["training"] = {"iterations": 100, "seconds": [float(i) for i in range(100)], "loss": [0.5] * 100,
                         "val_seconds": [], "val_mAP": [], "last_tenth_change": 0.0, "flattened": True}
    (root / "metrics.json").write_text(json.dumps(metrics))
    return root / "metrics.json"


def test_training_section_says_which_variant_was_stopped_early(tmp_path):
    paths = render_report(_with_training(tmp_path), tmp_path / "out")
    html, md = paths.html.read_text(), paths.markdown.read_text()
    assert "Training: was any variant stopped early?" in html and "## Training: was any variant stopped early?" in md
    assert "still falling when training stopped (-9.0% over the last tenth of 100 iterations)" in html
    assert "&lt;b&gt;x&lt;/b&gt;: its loss had flattened" in html and EVIL not in html
    assert (tmp_path / "out" / "figures" / "training_curves.png").is_file()
    assert "figures/training_curves.png" in md


def test_no_training_section_without_curves(tmp_path):
    paths = render_report(FIXTURE / "metrics.json", tmp_path / "out")
    assert "stopped early" not in paths.html.read_text()
