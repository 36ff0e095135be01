"""The report renders in a real browser: headless Chromium loads every image, logs no error.

Chromium is driven through the DevTools protocol over ``--remote-debugging-pipe``
(file descriptors 3 and 4, NUL-terminated JSON messages), so the test needs the
standard library only. It renders the fixture report with hostile class and
variant names, opens it, waits for the load event, asks the page for every
<img>'s ``naturalWidth``, collects console/log errors and exceptions, checks
that no <script> element was smuggled in, and saves a full-page screenshot
(kept under the pytest tmp dir, path printed).

Skips with a reason when /usr/bin/chromium (Debian's ``chromium``) is absent;
``.ci/run`` installs it, so CI runs this test.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from eval.report import render_report

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)
FIXTURE = Path(__file__).resolve().parent / "data" / "report"
EVIL = "<script>alert(1)</script>"

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install chromium)")


class PipeBrowser:
    """Just enough of the DevTools protocol: commands on a flat session, events collected."""

    def __init__(self, user_data_dir: Path):
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()

        # Chromium reads commands on fd 3 and writes replies on fd 4; fds 3 and 4 are listed in
        # pass_fds because Popen closes every other descriptor after preexec_fn has run.
        def wire_fds():
            high_r = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD, 10)  # out of the way of 3 and 4 first
            high_w = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD, 10)
            os.dup2(high_r, 3)
            os.dup2(high_w, 4)

        args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", f"--user-data-dir={user_data_dir}", "--remote-debugging-pipe",
                "--window-size=1200,900", "about:blank"]
        self.proc = subprocess.Popen(args, pass_fds=(3, 4, to_chrome_r, from_chrome_w), preexec_fn=wire_fds,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []

    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            if time.monotonic() > deadline:
                raise TimeoutError("no answer from chromium")
            chunk = os.read(self._from_chrome, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = 30.0) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float = 30.0) -> dict:
        for event in self.events:
            if event.get("method") == method:
                return event
        deadline = time.monotonic() + timeout
        while True:
            event = self._read_message(deadline)
            self.events.append(event)
            if event.get("method") == method:
                return event

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=10)
        except Exception:  # noqa: BLE001 - the browser may already be gone
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_chrome)
        os.close(self._from_chrome)


_PAGE_FACTS = """JSON.stringify({
  images: Array.from(document.images).map(i => ({alt: i.alt, complete: i.complete, width: i.naturalWidth})),
  scripts: document.querySelectorAll('script').length,
  text: document.body.innerText,
  tables: document.querySelectorAll('table').length
})"""


def _errors(events: list[dict]) -> list[str]:
    """Console errors, uncaught exceptions and error-level log entries (CSP, failed loads)."""
    found = []
    for e in events:
        method, params = e.get("method"), e.get("params", {})
        if method == "Runtime.exceptionThrown":
            found.append(f"exception: {params.get('exceptionDetails', {}).get('text')}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            found.append(f"console.{params['type']}: {params.get('args')}")
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            found.append(f"log: {params['entry'].get('text')}")
    return found


def _hostile_metrics(tmp_path: Path) -> Path:
    root = tmp_path / "in"
    shutil.copytree(FIXTURE / "examples", root / "examples")
    metrics = json.loads((FIXTURE / "metrics.json").read_text())
    names = metrics["dataset"]["class_names"]
    old = names[0]
    metrics["dataset"]["class_names"] = [EVIL] + names[1:]
    for ex in metrics["examples"]:
        for g in ex["ground_truth"]:
            g["label"] = EVIL if g["label"] == old else g["label"]
    for v in metrics["variants"]:
        v["per_class"][EVIL] = v["per_class"].pop(old)
        v["curves"]["per_class"][EVIL] = v["curves"]["per_class"].pop(old)
        for dets in v["examples"].values():
            for d in dets:
                d["label"] = EVIL if d["label"] == old else d["label"]
    metrics["variants"][1]["name"] = '<img src=x onerror="console.error(1)">'
    (root / "metrics.json").write_text(json.dumps(metrics))
    return root / "metrics.json"


def test_report_renders_in_headless_chromium(tmp_path):
    paths = render_report(_hostile_metrics(tmp_path), tmp_path / "out")
    browser = PipeBrowser(tmp_path / "chromium-profile")
    try:
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            browser.send(f"{domain}.enable", session=session)
        browser.send("Page.navigate", {"url": paths.html.resolve().as_uri()}, session=session)
        browser.wait_for("Page.loadEventFired", timeout=60)
        facts = json.loads(browser.send("Runtime.evaluate", {"expression": _PAGE_FACTS, "returnByValue": True},
                                        session=session)["result"]["value"])
        shot = browser.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True},
                            session=session, timeout=60)
        screenshot = tmp_path / "report-screenshot.png"
        screenshot.write_bytes(base64.b64decode(shot["data"]))
        print(f"screenshot: {screenshot}")
        time.sleep(0.2)  # let late log events arrive
        browser.send("Runtime.evaluate", {"expression": "1"}, session=session)
    finally:
        browser.close()

    assert len(facts["images"]) == 4, facts["images"]
    broken = [i["alt"] for i in facts["images"] if not (i["complete"] and i["width"] > 0)]
    assert not broken, f"images that did not load: {broken}"
    assert _errors(browser.events) == []
    assert facts["scripts"] == 0  # the hostile names stayed text
    assert EVIL in facts["text"] and '<img src=x onerror="console.error(1)">' in facts["text"]
    assert facts["tables"] == 4
    assert screenshot.stat().st_size > 50_000  # a real page, not a blank one
