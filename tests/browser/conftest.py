"""Browser fixtures: Debian's Chromium driven by Playwright (no downloaded browser), a live
server over the small test market, and pages that fail the test on any console error."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from browser_content import write_content
from support.live import LiveServer, start_server

# Chromium, its flags and the session's `browser` fixture: support/browser.py, tests/conftest.py.
VIEWPORT = {"width": 480, "height": 640}  # a small portrait phone: fast on software GL
# Console noise that is not ours: SEM bundles its own three.js, SwiftShader warns.
IGNORED_CONSOLE = ("Multiple instances of Three.js", "GPU stall due to ReadPixels",
                   "Automatic fallback to software WebGL")


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.browser)


@pytest.fixture
def market_server(tmp_path: Path) -> Iterator[LiveServer]:
    """A live server over the test market (fresh per test: tests change prices), with the
    test-only WebXR emulator served (`?xr-emulate=1`, issue #18)."""
    live = start_server(tmp_path, content_dir=write_content(tmp_path / "content"),
                        watch=False, xr_emulator=True)
    yield live
    live.stop()


class PageProbe:
    """A page plus everything it complained about."""

    def __init__(self, page) -> None:
        self.page = page
        self.errors: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))

    def _console(self, msg) -> None:
        if msg.type == "error" and not any(s in msg.text for s in IGNORED_CONSOLE):
            self.errors.append(f"console.error: {msg.text}")

    def hook(self) -> dict:
        return self.page.evaluate("JSON.parse(JSON.stringify(window.__holo))")

    def wait(self, condition: str, timeout: float = 15_000) -> None:
        self.page.wait_for_function(condition, timeout=timeout)


@pytest.fixture
def probe(browser) -> Iterator[PageProbe]:
    context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
    page = context.new_page()
    probe = PageProbe(page)
    yield probe
    context.close()
    assert probe.errors == [], "the page logged errors"
