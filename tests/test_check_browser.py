"""check.html and tune.html render in headless Chromium: every figure loads, no error, hostile names stay text.

Reuses the DevTools-pipe driver of tests/test_report_browser.py; skips the same way when
Chromium is absent (.ci/run installs it).
"""

from __future__ import annotations

import json
import time

import pytest

from detect.check.page import render_page
from detect.tuning.page import render_tune_page
from detect.tuning.space import Param
from tests.test_report_browser import CHROMIUM, EVIL, PipeBrowser, _errors

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install chromium)")

_FACTS = """JSON.stringify({
  images: Array.from(document.images).map(i => ({alt: i.alt, complete: i.complete, width: i.naturalWidth})),
  scripts: document.querySelectorAll('script').length, text: document.body.innerText
})"""


def _check_report() -> dict:
    sweep = {"x": [1e-6 * 10 ** (i / 4) for i in range(20)], "y": [2.0 - i * 0.05 for i in range(19)] + [float("nan")],
             "stop": 19, "suggested": 1e-3}
    return {"config": EVIL, "rung": "faster_rcnn", "status": "fail", "checks": [
        {"name": "initial loss", "status": "pass", "measured": "loss_classifier 1.61", "expected": "1.609",
         "hint": "", "details": [EVIL], "curves": {}, "seconds": 0.1},
        {"name": "overfit", "status": "fail", "measured": "mAP 0.2", "expected": "mAP >= 0.9", "hint": EVIL,
         "details": [], "curves": {"loss": {"x": [1, 2, 3], "y": [3.0, 2.0, 1.0]}}, "seconds": 1.0},
        {"name": "learning-rate sweep", "status": "warn", "measured": "exploded", "expected": "-", "hint": "h",
         "details": [], "curves": {"sweep": sweep}, "seconds": 1.0}]}


def _tune_page() -> str:
    params = [Param("train.lr", 1e-4, 1e-2), Param(EVIL, 0.0, 1.0, log=False)]
    records = [{"trial": i, "stage": "coarse" if i < 2 else "fine",
                "values": {"train.lr": 10 ** (-3 + i / 3), EVIL: i / 4},
                "mAP": None if i == 3 else 0.5 + i / 10, "status": "finished" if i != 3 else "stopped early",
                "seconds": 3.0, "losses": [3.0, 2.0 - i / 10, 1.5]} for i in range(4)]
    return render_tune_page(params, records, records[2])


def _open(tmp_path, html: str, name: str) -> tuple[dict, list]:
    page = tmp_path / name
    page.write_text(html, encoding="utf-8")
    browser = PipeBrowser(tmp_path / f"profile-{name}")
    try:
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            browser.send(f"{domain}.enable", session=session)
        browser.send("Page.navigate", {"url": page.resolve().as_uri()}, session=session)
        browser.wait_for("Page.loadEventFired", timeout=60)
        facts = json.loads(browser.send("Runtime.evaluate", {"expression": _FACTS, "returnByValue": True},
                                        session=session)["result"]["value"])
        time.sleep(0.2)  # let late log events arrive
        browser.send("Runtime.evaluate", {"expression": "1"}, session=session)
    finally:
        browser.close()
    return facts, _errors(browser.events)


@pytest.mark.parametrize("name", ["check.html", "tune.html"])
def test_check_and_tune_pages_render_in_headless_chromium(tmp_path, name):
    html = render_page(_check_report()) if name == "check.html" else _tune_page()
    facts, errors = _open(tmp_path, html, name)
    expected_images = 2 if name == "check.html" else 3
    assert len(facts["images"]) == expected_images, facts["images"]
    assert all(i["complete"] and i["width"] > 0 for i in facts["images"]), facts["images"]
    assert errors == []
    assert facts["scripts"] == 0 and EVIL in facts["text"]
