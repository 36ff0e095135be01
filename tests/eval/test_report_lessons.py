"""The sentences under the ladder table come from the numbers: mAP step, time multiple, costliest error, crowding."""

from __future__ import annotations

from eval.report import render_report
from eval.report_lessons import ladder_notes


def _variant(name, m, seconds, main=None, one=None, many=None, status="ok"):
    v = {"name": name, "status": status, "mAP": m, "seconds_per_image": {"total": seconds}}
    if main is not None:
        v["errors"] = {"main": main}
    if one is not None:
        v["breakdowns"] = {"by_count": {"1": {"mAP": one}, "4+": {"mAP": many}}}
    return v


def test_each_sentence_compares_with_the_row_above():
    metrics = {"variants": [
        _variant("regression", 0.05, 0.005, {"Cls": 0.01, "Miss": 0.30, "Loc": 0.02}, 0.40, 0.01),
        _variant("broken", None, None, status="failed"),
        _variant("rcnn", 0.85, 0.5, {"Cls": 0.02, "Loc": 0.05, "Miss": 0.0}),
    ]}
    notes = ladder_notes(metrics)
    assert notes == [
        "regression: mAP 0.050; missed objects cost it the most AP@50 (+0.300 if fixed); "
        "AP 0.400 on one-object images, 0.010 with four or more.",
        "rcnn: mAP 0.850 (+0.800 on regression); 100.0x its time per image; "
        "mislocalised boxes cost it the most AP@50 (+0.050 if fixed).",
    ]


def test_the_notes_stand_under_the_ladder_table(tmp_path):
    from pathlib import Path

    paths = render_report(Path(__file__).resolve().parents[1] / "data" / "report" / "metrics.json", tmp_path)
    html, md = paths.html.read_text(), paths.markdown.read_text()
    first = html.index("<h2>The ladder</h2>")
    assert "<ul><li>" in html[first: html.index("<h2>", first + 5)]
    assert "\n- " in md[md.index("## The ladder"): md.index("## ", md.index("## The ladder") + 5)]
