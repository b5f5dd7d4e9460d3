"""Debian's Chromium for browser tests (Playwright drives it; `playwright install` does not
work on these machines, see ../shared/notes/webxr-testing.md). One browser per test run:
the session-scoped `browser` fixture in tests/conftest.py; a test never starts Playwright
itself (a second sync_playwright() inside the first one's event loop fails)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from support.content import REPO

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--use-angle=swiftshader", "--enable-unsafe-swiftshader"]
CLIENT_DIST = REPO / "web-client" / "dist"
AXE = REPO / "web-client" / "node_modules" / "axe-core" / "axe.min.js"


def _missing(message: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@contextmanager
def chromium_browser() -> Iterator:
    """A headless Chromium under Playwright (fails under CI, skips elsewhere, when Chromium
    or the built web client is missing)."""
    if not CHROMIUM.exists() or shutil.which("chromium") is None:
        _missing("Chromium is missing: apt-get install -y chromium")
    if not (CLIENT_DIST / ".vite" / "manifest.json").is_file():
        _missing("web client not built: cd web-client && npm ci && npm run build")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        try:
            yield browser
        finally:
            browser.close()
