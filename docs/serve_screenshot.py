"""The README's picture of the `comemory serve` page: the demo's model on two of the demo's
videos, one event reviewed as a false alarm, taken in headless Chromium.

    make demo && .venv/bin/python docs/serve_screenshot.py     # -> docs/serve-page.png

Needs Debian's chromium (apt-get install chromium) and playwright (in the test extras).
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

from comemory.serve import Service
from comemory.serve.config import serve_config_from_dict

PROJECT = Path(__file__).resolve().parents[1]
DEMO = PROJECT / "runs" / "demo"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def main() -> int:
    checkpoint = DEMO / "run" / "checkpoint.pt"
    if not checkpoint.exists():
        print("run `make demo` first: the screenshot uses its model and videos")
        return 1
    with tempfile.TemporaryDirectory() as data:
        config = serve_config_from_dict({"data": data, "port": 0, "clip_before_s": 1,
                                         "clip_after_s": 1, "cameras": [
            {"name": "walkway", "source": str(DEMO / "data/training/frames/01"),
             "checkpoint": str(checkpoint)},
            {"name": "street", "source": str(DEMO / "data/testing/frames/01"),
             "checkpoint": str(checkpoint)}]})
        service = Service(config, environ={})
        service.start()
        try:
            event = wait_for_clip(service)
            review(service.web.address, event, "a bike: allowed on this path")
            shoot(service.web.address, event, PROJECT / "docs" / "serve-page.png")
        finally:
            service.stop()
    print("wrote docs/serve-page.png")
    return 0


def wait_for_clip(service: Service) -> int:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        events = [e for e in service.store.events() if e["camera"] == "street" and e["clip"]]
        if events:
            return events[-1]["id"]
        time.sleep(0.2)
    raise SystemExit(f"no event with a clip within 2 minutes: {service.store.events()}")


def review(address: str, event: int, note: str) -> None:
    body = json.dumps({"verdict": "false_alarm", "note": note}).encode()
    request = urllib.request.Request(f"{address}/api/events/{event}/review", data=body,
                                     headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=10).close()


def shoot(address: str, event: int, path: Path) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium",
                                             args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 860})
        page.goto(address)
        page.wait_for_selector(f"tr.event[data-id='{event}']", timeout=30_000)
        page.click(f"tr.event[data-id='{event}']")
        page.wait_for_function("isFinite(document.getElementById('clip').duration)",
                               timeout=30_000)
        page.evaluate("document.getElementById('clip').currentTime = 0.5")
        time.sleep(2.0)  # a few refreshes of the live pictures and curves
        page.screenshot(path=str(path))
        browser.close()


if __name__ == "__main__":
    sys.exit(main())
