"""The report renderer: every section from metrics.json alone, escaping, failures, bad files."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from eval.errors import InputError
from eval.report import per_class_table, render_report
from eval.report_markdown import md_escape

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "report"
EVIL = "<script>alert(1)</script>"


def _fixture_copy(tmp_path: Path, edit=None) -> Path:
    """A copy of the fixture directory whose metrics.json went through ``edit(metrics)``."""
    root = tmp_path / "in"
    shutil.copytree(FIXTURE / "examples", root / "examples")
    metrics = json.loads((FIXTURE / "metrics.json").read_text())
    if edit is not None:
        edit(metrics)
    (root / "metrics.json").write_text(json.dumps(metrics))
    return root / "metrics.json"


def _rename_class(metrics: dict, old: str, new: str) -> None:
    metrics["dataset"]["class_names"] = [new if c == old else c for c in metrics["dataset"]["class_names"]]
    for ex in metrics["examples"]:
        for g in ex["ground_truth"]:
            g["label"] = new if g["label"] == old else g["label"]
    for v in metrics["variants"]:
        v["per_class"][new] = v["per_class"].pop(old)
        v["curves"]["per_class"][new] = v["curves"]["per_class"].pop(old)
        for dets in v["examples"].values():
            for d in dets:
                d["label"] = new if d["label"] == old else d["label"]


def test_report_has_every_section_and_variant(tmp_path):
    paths = render_report(FIXTURE / "metrics.json", tmp_path / "out")
    html = paths.html.read_text()
    md = paths.markdown.read_text()
    for heading in ["The ladder", "Average precision per class", "Precision-recall, all classes pooled",
                    "Precision-recall per class", "Speed versus accuracy", "The same test images, every variant",
                    "Held equal", "Machine"]:
        assert f"<h2>{heading}</h2>" in html
        assert f"## {heading}" in md
    metrics = json.loads((FIXTURE / "metrics.json").read_text())
    for v in metrics["variants"]:
        name = v["name"]
        assert f'<td class="text">{name}</td>' in html
        assert md_escape(name) in md
    # the ladder row carries the numbers the fixture holds (faster_rcnn: 6 ms + 18 ms, 24 ms total)
    row = re.search(r'<tr><td class="text">faster_rcnn</td>(.*?)</tr>', html).group(1)
    assert ">0.902 &#9733;<" in row and "6.0 ms" in row and "18.0 ms" in row and "24.0 ms" in row
    assert "41.7" in row and "0.52 M" in row and "110 s" in row
    # held-equal settings and machine rows
    assert '<td class="text">seed</td><td class="text">0</td>' in html
    assert '<td class="text">torch</td><td class="text">2.14.1</td>' in html
    # four figures, written for the markdown file and embedded (the same bytes) in the HTML
    names = sorted(p.name for p in paths.figures)
    assert names == ["examples.png", "pr_per_class.png", "pr_pooled.png", "speed_accuracy.png"]
    for p in paths.figures:
        assert f"figures/{p.name}" in md
        with Image.open(p) as img:
            assert img.format == "PNG" and img.width >= 300 and img.height >= 150
    assert html.count('src="data:image/png;base64,') == 4
    assert "src=\"figures/" not in html  # self-contained: opens without its figures/ directory


def test_best_per_class_is_marked_and_ties_share_the_mark():
    metrics = json.loads((FIXTURE / "metrics.json").read_text())
    metrics["variants"][0]["per_class"]["circle"] = 0.99
    metrics["variants"][2]["per_class"]["circle"] = 0.99
    table = per_class_table(metrics)
    circle = table.header.index("regression"), table.header.index("rcnn")
    row = next(i for i, r in enumerate(table.rows) if r[0] == "circle")
    assert [c for c, b in enumerate(table.bold[row]) if b] == list(circle)
    square = next(i for i, r in enumerate(table.rows) if r[0] == "square")
    best = max(range(1, 6), key=lambda c: float(table.rows[square][c]))
    assert [c for c, b in enumerate(table.bold[square]) if b] == [best]


def test_every_data_string_is_escaped(tmp_path):
    def edit(m):
        _rename_class(m, "circle", EVIL)
        _rename_class(m, "star", "cost $5 | a*b_c")  # mathtext and markdown metacharacters
        m["variants"][1]["name"] = '<img src=x onerror="alert(2)">'
        m["variants"][1]["config"] = "configs/<b>x</b>.yaml"
        m["variants"][3]["status"] = "failed"
        m["variants"][3]["error"] = "RuntimeError: </td><script>alert(3)</script>"
        m["settings"]["dataset"] = "<iframe src=//evil>"
        m["examples"][0]["image_id"] = "<svg onload=alert(4)>"
        m["variants"][0]["examples"] = {"<svg onload=alert(4)>": m["variants"][0]["examples"].pop("000000")}

    paths = render_report(_fixture_copy(tmp_path, edit), tmp_path / "out")
    html = paths.html.read_text()
    assert "<script" not in html.lower() and "<img src=x" not in html and "<iframe" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=&quot;alert(2)&quot;&gt;" in html
    assert "&lt;/td&gt;&lt;script&gt;alert(3)&lt;/script&gt;" in html
    assert "cost $5 | a*b_c" in html
    md = paths.markdown.read_text()
    assert "<script" not in md.lower() and "<img src=x" not in md
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in md
    assert r"cost $5 \| a\*b\_c" in md  # the pipe would otherwise split the table row
    # every markdown table row keeps its column count despite the pipe in the class name
    lines = [ln for ln in md.splitlines() if ln.startswith("| ") and "star" not in ln]
    per_class = [ln for ln in md.splitlines() if ln.startswith("| cost")]
    assert per_class and all(len(re.split(r"(?<!\\)\|", ln)) == 8 for ln in per_class)
    assert lines


def test_failed_variant_is_reported_and_the_rest_still_renders(tmp_path):
    def edit(m):
        v = m["variants"][2]
        v.update(status="failed", error="CUDA out of memory while training", mAP=None, params=None,
                 train_seconds=None, per_class={}, examples={},
                 seconds_per_image={"proposals": None, "network": None, "total": None},
                 curves={"pooled": None, "per_class": {}})

    paths = render_report(_fixture_copy(tmp_path, edit), tmp_path / "out")
    html = paths.html.read_text()
    row = re.search(r'<tr><td class="text">rcnn</td>(.*?)</tr>', html).group(1)
    assert '<td class="failed">failed</td>' in row and "<td>—</td>" in row
    assert "<h2>Failures</h2>" in html and "CUDA out of memory while training" in html
    assert "**rcnn**: CUDA out of memory while training" in paths.markdown.read_text()
    assert len(paths.figures) == 4


def _drop(key_path):
    def edit(m):
        node = m
        for k in key_path[:-1]:
            node = node[k]
        del node[key_path[-1]]
    return edit


def _set(key_path, value):
    def edit(m):
        node = m
        for k in key_path[:-1]:
            node = node[k]
        node[key_path[-1]] = value
    return edit


@pytest.mark.parametrize("edit, message", [
    (_drop(["variants", 1, "mAP"]), "key variants[1].mAP: missing"),
    (_set(["variants", 1, "mAP"], "high"), "key variants[1].mAP: expected a number from 0 to 1 or null, got \"high\""),
    (_set(["variants", 1, "mAP"], 5.0), "key variants[1].mAP: expected a number from 0 to 1 or null, got 5.0"),
    (_set(["variants", 0, "per_class", "square"], -0.1), "key variants[0].per_class.square: expected a number from 0"),
    (_set(["variants", 2, "seconds_per_image", "total"], -1.0), "key variants[2].seconds_per_image.total: "
                                                               "expected a finite number >= 0 or null, got -1.0"),
    (_set(["dataset", "num_images"], -3), "key dataset.num_images: expected a whole number >= 0, got -3"),
    (_set(["variants", 0, "per_class", "square"], [1]), "key variants[0].per_class.square: expected"),
    (_set(["variants", 4, "seconds_per_image"], 0.1), "key variants[4].seconds_per_image: expected a mapping"),
    (_set(["variants", 2, "status"], "done"), "key variants[2].status: expected 'ok' or 'failed'"),
    (_set(["variants", 2, "params"], 1.5), "key variants[2].params: expected a whole number >= 0 or null"),
    (_set(["variants", 3, "curves", "pooled", "recall"], [0.1]), "key variants[3].curves.pooled: recall and"),
    (_set(["variants", 3, "examples", "000001", 0, "box"], [1, 2, 3]), "key variants[3].examples.000001[0].box"),
    (_set(["variants", 1, "name"], "regression"), "key variants[1].name: \"regression\" appears twice"),
    (_set(["examples", 0, "file"], "../../etc/passwd"), "key examples[0].file: expected a relative file path"),
    (_set(["examples", 1, "file"], "examples/missing.png"), "key examples[1].file: image not found"),
    (_set(["dataset", "class_names"], "circle"), "key dataset.class_names: expected a list"),
    (_set(["schema_version"], 7), "key schema_version: this detladder reads version 1"),
    (_set(["variants"], {}), "key variants: expected a list"),
])
def test_malformed_metrics_name_the_bad_key(tmp_path, edit, message):
    path = _fixture_copy(tmp_path, edit)
    with pytest.raises(InputError) as info:
        render_report(path, tmp_path / "out")
    assert str(info.value).startswith(f"{path}: ")
    assert message in str(info.value)
    assert not (tmp_path / "out" / "report.html").exists()


@pytest.mark.parametrize("text, message", [
    ('{"schema_version": 1, "protocol": ', "not valid JSON at line 1"),
    ('{"schema_version": 1, "protocol": NaN}', "NaN is not a number JSON allows"),
    ("[1, 2]", "key <top>: expected a mapping"),
])
def test_unparseable_metrics_give_one_line(tmp_path, text, message):
    path = tmp_path / "metrics.json"
    path.write_text(text)
    with pytest.raises(InputError, match=re.escape(message)):
        render_report(path, tmp_path / "out")


def test_cli_report_bad_key_is_one_line_exit_2(tmp_path):
    from detect.cli import main

    path = _fixture_copy(tmp_path, _set(["variants", 0, "train_seconds"], "fast"))

    code, err = _run_main(main, ["report", str(path), "--out", str(tmp_path / "o")])
    assert code == 2
    assert err.count("\n") == 1 and "key variants[0].train_seconds" in err and str(path) in err


def _run_main(main, argv):
    import contextlib

    buf = io.StringIO()
    with contextlib.redirect_stderr(buf):
        code = main(argv)
    return code, buf.getvalue()


def test_report_rerenders_into_another_directory_without_torch(tmp_path):
    """Re-rendering needs metrics.json and its example images only, and never imports torch."""
    src = _fixture_copy(tmp_path, None)
    out = tmp_path / "elsewhere"
    code = ("import sys; from eval.report import render_report; "
            f"render_report({str(src)!r}, {str(out)!r}); "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'detect', 'proposals')); "
            "print(bad)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
    assert (out / "report.html").is_file() and (out / "figures" / "examples.png").is_file()


def test_input_metrics_are_not_modified(tmp_path):
    path = _fixture_copy(tmp_path, None)
    before = path.read_bytes()
    render_report(path, path.parent)  # rendering into the metrics directory itself
    assert path.read_bytes() == before
    assert (path.parent / "report.html").is_file()
