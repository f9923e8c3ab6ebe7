"""The HTML report in a real browser: headless Chromium over the DevTools protocol.

``iec104 report`` turns a pcap with known faults into report.html; Chromium (Debian package
``chromium``) loads it, the test collects every console message, uncaught exception and log
entry of level error, checks that the tables and both plots rendered (images decoded, with
a size), and saves a full-page screenshot next to the report (``report.png`` in the test's
tmp directory, kept by pytest for inspection).

Chromium is started on a private profile with networking features off, on a DevTools port
it picks itself (read from ``DevToolsActivePort``); the test talks to it with
``websocket-client``. Without Chromium the test is skipped, except in CI, where it fails.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.analyzer.test_analyzer import command, healthy
from tests.conftest import in_ci
from tests.support.conversation import write_pcap

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync",
                  "--disable-default-apps", "--remote-allow-origins=*",
                  "--remote-debugging-port=0", "--window-size=1280,900"]


def chromium_path() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    message = "headless Chromium not installed (Debian package 'chromium')"
    if in_ci():
        pytest.fail(message + " -- required in CI", pytrace=False)
    pytest.skip(message)


class DevTools:
    """A minimal DevTools protocol client on one page target."""

    def __init__(self, ws_url: str) -> None:
        import websocket  # websocket-client

        self.ws = websocket.create_connection(ws_url, timeout=30, suppress_origin=True)
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        my_id = self.next_id
        self.ws.send(json.dumps({"id": my_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == my_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})  # type: ignore[no-any-return]
            if "method" in msg:
                self.events.append(msg)

    def wait_for(self, method: str, timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        for event in self.events:
            if event["method"] == method:
                return event
        while time.monotonic() < deadline:
            msg = json.loads(self.ws.recv())
            if "method" in msg:
                self.events.append(msg)
                if msg["method"] == method:
                    return msg
        raise TimeoutError(method)

    def close(self) -> None:
        self.ws.close()


@pytest.fixture
def browser(tmp_path: Path):  # type: ignore[no-untyped-def]
    exe = chromium_path()
    profile = tmp_path / "profile"
    proc = subprocess.Popen([exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                             "about:blank"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not port_file.exists() or not port_file.read_text().strip():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("Chromium did not open its DevTools port")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            targets = json.load(r)
        page = next(t for t in targets if t["type"] == "page")
        client = DevTools(page["webSocketDebuggerUrl"])
        yield client
        client.close()
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_report_renders_without_console_errors(tmp_path: Path, browser: DevTools) -> None:
    conv = healthy()
    command(conv, 3001, term=False)  # a missing ACTTERM
    command(conv, 3002, con=False)   # an unanswered command
    pcap = write_pcap(tmp_path / "faults.pcap", conv)
    report = tmp_path / "report.html"
    subprocess.run([sys.executable, "-m", "iec104.cli", "report", str(pcap), "-o",
                    str(report)], check=True, timeout=120)

    browser.call("Runtime.enable")
    browser.call("Log.enable")
    browser.call("Page.enable")
    browser.call("Page.navigate", url=report.resolve().as_uri())
    browser.wait_for("Page.loadEventFired")
    state = browser.call("Runtime.evaluate", returnByValue=True, expression="""({
        tables: document.querySelectorAll('table').length,
        images: Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth,
                                                      i.naturalHeight]),
        headings: Array.from(document.querySelectorAll('h2')).map(h => h.textContent),
        text: document.body.innerText,
        height: document.documentElement.scrollHeight,
    })""")["result"]["value"]
    metrics = {"width": 1280, "height": min(int(state["height"]), 12000),
               "deviceScaleFactor": 1, "mobile": False}
    browser.call("Emulation.setDeviceMetricsOverride", **metrics)
    shot = browser.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
    png = base64.b64decode(shot["data"])
    (tmp_path / "report.png").write_bytes(png)

    errors = []
    for event in browser.events:
        method, params = event["method"], event.get("params", {})
        if method == "Runtime.exceptionThrown":
            errors.append(params["exceptionDetails"].get("text"))
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            errors.append(params.get("args"))
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            errors.append(params["entry"].get("text"))
    assert errors == []

    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 50_000
    assert state["tables"] >= 8
    images = {alt: (complete, w, h) for alt, complete, w, h in state["images"]}
    assert images["message rate chart"][0] and images["message rate chart"][1] >= 600
    assert images["value timeline"][0] and images["value timeline"][1] >= 600
    assert any(h.startswith("Command audit (5)") for h in state["headings"])
    assert "no_actterm: 1" in state["text"] and "unanswered: 1" in state["text"]
