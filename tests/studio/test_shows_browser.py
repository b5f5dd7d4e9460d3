"""The show timeline /studio/<m>/shows/<show> in Debian's Chromium (#18): a performer moves
a cue on the timeline, saves it to the show file, rehearses a cue, and a second page on the
display's preview (the rehearse link) plays it; axe-core finds no serious or critical
violation on the timeline (both sizes) and the displays overview (screenshots into docs/studio/ with
HOLOBAZAAR_SCREENSHOTS=1). One server for the module."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from studio.test_inventory_browser import DESKTOP, PHONE, SHOTS, Session, _axe

from support.accounts import Accounts
from support.live import LiveServer, start_server

pytestmark = pytest.mark.browser
SHOW = "/studio/greenhaven/shows/harvest-collective"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = start_server(tmp_path_factory.mktemp("shows-browser"), watch=False)
    yield server
    server.stop()


def _shoot(page, name: str) -> None:
    if os.environ.get("HOLOBAZAAR_SCREENSHOTS"):
        SHOTS.mkdir(parents=True, exist_ok=True)
        for size, viewport in (("phone", PHONE), ("desktop", DESKTOP)):
            page.set_viewport_size(viewport)
            page.screenshot(path=str(SHOTS / f"{name}-{size}.png"), full_page=True)
        page.set_viewport_size(DESKTOP)


def test_performer_moves_saves_and_rehearses_a_cue(browser, live: LiveServer) -> None:
    accounts = Accounts(live)
    accounts.user("pia", ["performer"], ["greenhaven"])
    accounts.user("cura", ["curator"], ["greenhaven"])
    show_file = Path(live.settings.content_dir) / "scenes" / "greenhaven" / "shows" / \
        "harvest-collective.yaml"
    opened: list[Session] = []
    try:
        # The overview with thumbnails and zones (at 390x844 in test_authoring_browser).
        curator = Session(browser, live, DESKTOP).login("cura", "/studio/greenhaven")
        opened.append(curator)
        assert [v for v in _axe(curator.page)] == []
        _shoot(curator.page, "displays")

        s = Session(browser, live, DESKTOP).login("pia", SHOW)
        opened.append(s)
        page = s.page
        assert [v for v in _axe(page)] == []
        page.set_viewport_size(PHONE)
        assert [v for v in _axe(page)] == []
        page.set_viewport_size(DESKTOP)
        # Move cue 2 one second later on the timeline (keyboard on its bar), then save.
        bar = page.locator('.tl-bar[data-cue="2"]')
        left = bar.evaluate("b => b.getBoundingClientRect().left")
        bar.focus()
        page.keyboard.press("ArrowRight")
        page.keyboard.press("ArrowRight")
        page.wait_for_function(
            "() => document.querySelector('.tl-bar[data-cue=\"2\"]')"
            f".getBoundingClientRect().left > {left} + 2")
        assert "Unsaved" in page.text_content("#status")
        page.click("#save")
        page.wait_for_function("() => document.getElementById('status').textContent"
                               ".startsWith('Saved')")
        text = show_file.read_text()
        assert text.startswith('# "Harvest Collective"')  # the file's comments stay
        with httpx.Client(base_url=live.url, cookies=s.context.cookies() and {
                c["name"]: c["value"] for c in s.context.cookies()}, timeout=10) as api:
            doc = api.get("/api/v1/markets/greenhaven/shows/harvest-collective/source").json()
        assert doc["document"]["show"]["cues"][1]["pre_wait"] == 1
        _shoot(page, "show-timeline")
        # The file changed on disk meanwhile: the next save is refused and shows theirs.
        show_file.write_text(text + "# edited by hand\n")
        bar = page.locator('.tl-bar[data-cue="2"]')
        bar.focus()
        page.keyboard.press("ArrowLeft")
        page.click("#save")
        page.wait_for_selector("#conflict:not([hidden])")
        assert "2 · The bees wake (pre-wait 1 s" in page.text_content("#theirs")
        page.click("#take-theirs")
        assert show_file.read_text().endswith("# edited by hand\n")
        # The cue's fields come from the show schema (schemaform.js): a bad value is shown
        # next to its field with the loader's message, and goes once it is fixed.
        page.click(".cue-list li:nth-child(2) .pick")
        duration = page.locator('#cue-fields [data-pointer="/show/cues/1/duration"]')
        duration.fill("-1")
        page.wait_for_selector('#cue-fields [data-error-for="/show/cues/1/duration"]:not([hidden])')
        assert duration.get_attribute("aria-invalid") == "true"
        assert not page.is_hidden("#problems")
        duration.fill("15")
        page.wait_for_selector("#problems", state="hidden")
        assert page.evaluate("document.activeElement.dataset.pointer") == "/show/cues/1/duration"

        # A second page follows a display's preview through the rehearse link.
        link = page.get_attribute(".previews a", "href")
        preview = Session(browser, live, PHONE)
        opened.append(preview)
        preview.page.goto(f"{live.url}{link}")
        # Joined (a pong came back after the hello), not waiting for the models to load.
        preview.page.wait_for_function(
            "() => window.__holo && window.__holo.clockOffset !== null", timeout=20000)
        assert "Draft preview" in preview.page.text_content("#preview-note")
        page.click('button.rehearse[data-cue="1"]')
        page.wait_for_function("() => document.getElementById('status').textContent"
                               ".startsWith('Cue 1 sent')")
        preview.page.wait_for_function(
            "() => window.__holo.show.executed.some(e => e.id.includes('rehearsal'))",
            timeout=5000)
        assert s.errors == [] and curator.errors == []
    finally:
        for session in opened:
            session.close()
