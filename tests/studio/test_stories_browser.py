"""Stories, recipes and moderation in Debian's Chromium (Playwright, #21): a curator
writes a story and sees the live preview, sends it for review, ANOTHER curator publishes
it (four-eyes), an older revision is restored and visitors see it; a visitor sends a
recipe through the form on the market page, a curator approves and publishes it and it
appears for visitors; axe-core finds no serious or critical violation on these pages at
390x844 and 1440x900 (screenshots into docs/studio/ with HOLOBAZAAR_SCREENSHOTS=1)."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from PIL import Image

from studio.test_stories import start_four_eyes

from support.accounts import Accounts
from support.browser import AXE
from support.live import LiveServer
from support.studio import DESKTOP, PHONE, sessions_for, shoot
from support.studio import axe_serious as _axe

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = start_four_eyes(tmp_path_factory.mktemp("stories-browser"))
    accounts = Accounts(server)
    accounts.user("carol", ["curator"], ["alpha"])
    accounts.user("dave", ["curator"], ["alpha"])
    yield server
    server.stop()


@pytest.fixture
def sessions(browser) -> Iterator:
    with sessions_for(browser, allowed=("status of 4",)) as open_session:
        yield open_session


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 40, 40)).save(buffer, "PNG")
    return buffer.getvalue()


def test_story_written_previewed_reviewed_published_restored(live, sessions):
    carol = sessions(live).login("carol", "/studio/alpha/stories").page
    carol.fill("#new-title", "Morning at the orchard")
    carol.click("form[action$='/stories'] button[type=submit]")
    carol.wait_for_selector("#f-body")
    carol.fill("#f-body", "The **first** apples came in.")
    carol.locator("#preview strong", has_text="first").wait_for()  # the live preview
    # An image goes through the asset pipeline and lands in the text and the preview.
    carol.set_input_files("#f-image", files=[{"name": "apples.png", "mimeType": "image/png",
                                              "buffer": _png()}])
    carol.wait_for_selector("#image-status:has-text('Image added')", timeout=30_000)
    assert "![apples](" in carol.input_value("#f-body")
    carol.locator("#preview img[alt=apples]").wait_for()
    carol.click("#edit button[type=submit]")
    carol.wait_for_selector("p.notice")
    carol.fill("#f-body", "A second version of the text.")
    carol.click("#edit button[type=submit]")
    carol.wait_for_selector("p.notice")
    carol.click("button:has-text('Send for review')")
    carol.wait_for_selector("#status:has-text('in review')")
    editor_url = carol.url.split("?")[0]
    slug = editor_url.rsplit("/", 1)[1]
    carol.click("button:has-text('Publish')")
    carol.wait_for_selector("p.alert:has-text('another curator')")

    dave = sessions(live).login("dave", "/studio/alpha/stories").page
    dave.goto(editor_url)
    dave.click("button:has-text('Publish')")
    dave.wait_for_selector("#status:has-text('published')")
    visitor = sessions(live, PHONE).page
    visitor.goto(f"{live.url}/s/{slug}")
    assert "A second version" in visitor.content()

    dave.goto(editor_url + "?diff=2#diff")
    assert dave.locator(".diff .del").count() >= 1
    dave.click("button[aria-label='Restore revision 2']")
    dave.wait_for_selector("p.notice:has-text('Restored')")
    visitor.goto(f"{live.url}/s/{slug}")
    assert visitor.locator("article strong", has_text="first").count() == 1


def test_visitor_sends_a_recipe_and_a_curator_approves_it(live, sessions):
    carol = sessions(live).login("carol", "/studio/alpha/moderation").page  # open already
    visitor = sessions(live, PHONE).page
    visitor.goto(f"{live.url}/m/alpha")
    visitor.check("input[name=kind][value=recipe]")
    visitor.fill("#s-title", "Baked apples")
    visitor.fill("#s-author", "Ana")
    visitor.fill("#s-body", "My grandmother's.")
    visitor.fill("#s-ingredients", "4 apples\nhoney")
    visitor.fill("#s-instructions", "Core the apples.\nBake 30 minutes.")
    visitor.click(".send button[type=submit]")
    visitor.wait_for_selector("h1:has-text('Thank you')")
    assert "What happens next" in visitor.content()

    # The open queue shows it without a reload.
    card = carol.locator("article.item", has_text="Baked apples")
    card.wait_for(timeout=10_000)
    slug = card.locator("input[name=id]").input_value()
    card.locator("button[value=publish]").click()
    carol.wait_for_selector("p.notice:has-text('published')")
    visitor.goto(f"{live.url}/r/{slug}")
    assert "Core the apples." in visitor.content()


@pytest.mark.parametrize("size", ["phone", "desktop"])
def test_axe_and_screenshots(live, sessions, size):
    if not AXE.is_file():
        pytest.skip("axe-core not installed: cd web-client && npm ci")
    viewport = PHONE if size == "phone" else DESKTOP
    visitor = sessions(live, viewport).page
    visitor.goto(f"{live.url}/m/alpha/send?kind=recipe")
    visitor.fill("#s-title", "Pear tart")
    visitor.fill("#s-body", "Try www.example.com too")
    visitor.click(".send button[type=submit]")  # no ingredients: errors next to fields
    visitor.wait_for_selector("#e-ingredients")
    assert _axe(visitor) == []
    shoot(visitor, "send-form-errors", size)
    visitor.fill("#s-ingredients", "3 pears")
    visitor.click(".send button[type=submit]")
    visitor.wait_for_selector("h1:has-text('Thank you')")
    assert _axe(visitor) == []
    shoot(visitor, "send-thanks", size)

    carol = sessions(live, viewport).login("carol", "/studio/alpha/moderation").page
    assert _axe(carol) == []
    shoot(carol, "moderation", size)
    carol.goto(f"{live.url}/studio/alpha/stories")
    assert _axe(carol) == []
    shoot(carol, "stories", size)
    carol.locator("table a").first.click()
    carol.wait_for_selector("#f-body")
    if carol.locator("a:has-text('Compare with now')").count():
        carol.locator("a:has-text('Compare with now')").last.click()
        carol.wait_for_selector("#diff")
    assert _axe(carol) == []
    shoot(carol, "story-editor", size)
