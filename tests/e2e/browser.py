"""Open a self-contained HTML report in headless Chromium (Debian's, driven by Playwright) and read it
as a person would see it: the rendered text, JavaScript errors, failed requests, a screenshot."""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
]


def find_chromium() -> str | None:
    return os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class Page:
    text: str = ""
    page_errors: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)


def open_report(browser: Any, html: Path, screenshot: Path | None = None, timeout_s: float = 60.0) -> Page:
    """Load `html`, wait until Evidently's React widgets have rendered and settled, and read the page.

    Requests leaving the machine are refused: a report must be self-contained.
    """
    page_result, started = Page(), time.monotonic()
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        context.route("http*://**/*", lambda route: route.abort("blockedbyclient"))
        page = context.new_page()
        page.on("pageerror", lambda e: page_result.page_errors.append(f"{e.name}: {e.message}"))
        page.on("console", lambda m: page_result.console_errors.append(m.text) if m.type == "error" else None)
        page.on("requestfailed", lambda r: page_result.failed_requests.append(f"{r.url[:120]} {r.failure}"))
        page.goto(html.resolve().as_uri(), wait_until="load", timeout=timeout_s * 1000)
        page.wait_for_function(
            "() => { const r = document.querySelector('[id^=\"root_metric_\"]'); return r && r.innerText.trim(); }",
            timeout=timeout_s * 1000,
        )
        previous, stable_since = None, time.monotonic()
        while time.monotonic() - started < timeout_s:  # charts draw after the widgets mount
            now = page.evaluate(
                "() => [document.body.innerText.length, document.querySelectorAll('svg,canvas').length]"
            )
            if now != previous:
                previous, stable_since = now, time.monotonic()
            elif time.monotonic() - stable_since >= 0.5:
                break
            page.wait_for_timeout(100)
        page_result.text = page.evaluate("() => document.body.innerText")
        if screenshot is not None:
            page.screenshot(path=str(screenshot), full_page=True)
    finally:
        context.close()
    return page_result
