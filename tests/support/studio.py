"""Studio pages in the browser (#21): a browser context signed in as one staff user
(console errors collected), a fixture body that opens such sessions and checks at the end
that none logged an unexpected error, axe-core's serious and critical findings, and
screenshots into docs/studio/ (with HOLOBAZAAR_SCREENSHOTS=1). Each studio browser module
shares these instead of its own copy."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from support.accounts import PASSWORD
from support.browser import AXE
from support.content import REPO
from support.live import LiveServer

SHOTS = REPO / "docs" / "studio"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1440, "height": 900}
SIZES = {"phone": PHONE, "desktop": DESKTOP}
IGNORED = ("Multiple instances of Three.js", "GPU stall due to ReadPixels",
           "Automatic fallback to software WebGL", "WebGL", "GL Driver Message",
           # The API's expected answers to the pages' requests (confirm step, stale save,
           # bad value) are not errors of the page.
           "status of 409", "status of 412", "status of 422")


class Session:
    """A browser context signed in as one user, collecting console errors."""

    def __init__(self, browser, live: LiveServer, viewport=DESKTOP) -> None:
        self.live = live
        self.context = browser.new_context(viewport=viewport, device_scale_factor=1)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and not any(
            s in m.text for s in IGNORED) and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def login(self, name: str, next_url: str, password: str = PASSWORD) -> Session:
        self.page.goto(f"{self.live.url}/login?next={next_url}")
        self.page.fill("#username", name)
        self.page.fill("#password", password)
        self.page.click("button[type=submit]")
        self.page.wait_for_url(f"**{next_url}")
        return self

    def close(self) -> None:
        self.context.close()


@contextmanager
def sessions_for(browser, allowed: tuple[str, ...] = ()) -> Iterator[Callable[..., Session]]:
    """`open_session(live, viewport)`; on the way out every session is closed and no page
    may have logged an error (but those containing one of `allowed`)."""
    opened: list[Session] = []

    def open_session(live: LiveServer, viewport=DESKTOP) -> Session:
        session = Session(browser, live, viewport)
        opened.append(session)
        return session

    yield open_session
    for session in opened:
        session.close()
    assert [e for s in opened for e in s.errors if not any(a in e for a in allowed)] == []


def axe_serious(page) -> list:
    """axe-core's serious and critical violations on the page: (rule, impact, targets)."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
            for v in result["violations"] if v["impact"] in ("serious", "critical")]


def shoot(page, name: str, size: str, full_page: bool = True) -> None:
    """docs/studio/<name>-<size>.png when HOLOBAZAAR_SCREENSHOTS is set."""
    if os.environ.get("HOLOBAZAAR_SCREENSHOTS"):
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}-{size}.png"), full_page=full_page)
