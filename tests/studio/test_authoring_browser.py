"""The displays overview /studio/<m> in Debian's Chromium (#18): axe-core finds no serious
or critical violation at 390x844 and 1440x900; a curator creates a display with the form
(screenshots into docs/studio/ with HOLOBAZAAR_SCREENSHOTS=1)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from studio.test_inventory_browser import DESKTOP, PHONE, SHOTS, Session, _axe

from support.accounts import Accounts
from support.live import LiveServer

pytestmark = pytest.mark.browser


@pytest.fixture
def session(browser, server: LiveServer) -> Iterator:
    Accounts(server).user("cora", ["curator"], ["alpha"])
    opened: list[Session] = []

    def open_session(viewport) -> Session:
        s = Session(browser, server, viewport)
        opened.append(s)
        return s.login("cora", "/studio/alpha")

    yield open_session
    for s in opened:
        s.close()


@pytest.mark.parametrize("size", ["phone", "desktop"])
def test_overview_is_accessible_and_creates_a_display(session, size: str) -> None:
    s = session(PHONE if size == "phone" else DESKTOP)
    page = s.page
    serious = [v for v in _axe(page) if v[1] in ("serious", "critical")]
    assert serious == []
    if os.environ.get("HOLOBAZAAR_SCREENSHOTS"):
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"displays-{size}.png"), full_page=True)
    page.fill("#new-id", f"new-{size}")
    page.fill("#new-title", "Fresh <b>herbs</b>")
    page.click("form[action$='/displays'] button[type=submit]")
    page.wait_for_url(f"**/studio/alpha?created=new-{size}")
