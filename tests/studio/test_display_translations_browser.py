"""The display translations page in Debian's Chromium (#23), in Arabic on a phone: the page
is right to left and no wider than the screen (the studio's skip link once made it 2439 px
wide), the text as written never overlaps its Arabic box, which is typed right to left,
axe-core finds nothing serious, and an Arabic text typed and saved is on the page again
with the count of missing texts one lower (screenshots with HOLOBAZAAR_SCREENSHOTS=1)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from support.accounts import Accounts
from support.live import LiveServer, start_server
from support.studio import DESKTOP, PHONE, axe_serious, sessions_for, shoot

pytestmark = pytest.mark.browser
MARKET, DISPLAY = "greenhaven", "korenbloem-bakery"  # four texts without Arabic
PAGE = f"/studio/{MARKET}/displays/{DISPLAY}/translations?lang=ar"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = start_server(tmp_path_factory.mktemp("display-translations-browser"))
    Accounts(server).user("tessa", ["curator"], [MARKET])
    yield server
    server.stop()


@pytest.fixture
def sessions(browser) -> Iterator:
    with sessions_for(browser) as open_session:
        yield open_session


def _layout(page) -> dict:
    return page.evaluate("""() => {
      const overlap = (a, b) => a.left < b.right - 1 && b.left < a.right - 1
                                && a.top < b.bottom - 1 && b.top < a.bottom - 1;
      const rows = [...document.querySelectorAll('.row')].map(row => {
        const source = row.querySelector('.source').getBoundingClientRect();
        const box = row.querySelector('input[lang], textarea[lang]');
        return {overlap: overlap(source, box.getBoundingClientRect()),
                dir: getComputedStyle(box).direction};
      });
      return {wide: document.documentElement.scrollWidth - window.innerWidth,
              dir: document.documentElement.dir, rows};
    }""")


@pytest.mark.parametrize("size", ["phone", "desktop"])
def test_arabic_page_reads_right_to_left_and_saves(live, sessions, size) -> None:
    session = sessions(live, PHONE if size == "phone" else DESKTOP)
    # The studio in Arabic too (the picker's cookie), as an Arabic-speaking curator has it.
    session.context.add_cookies([{"name": "hb_lang", "value": "ar", "url": live.url}])
    page = session.login("tessa", PAGE).page
    layout = _layout(page)
    assert layout["dir"] == "rtl" and layout["wide"] <= 0, layout
    assert layout["rows"] and not any(r["overlap"] for r in layout["rows"]), layout
    assert {r["dir"] for r in layout["rows"]} == {"rtl"}
    assert axe_serious(page) == []
    shoot(page, "display-translations-ar", size)
    if size == "desktop":
        return
    missing = page.locator('[data-count="missing"]').inner_text()
    page.fill("#t-node-badge-alt", "خُبز في {{ market.name }}")
    page.click("#translations-form button[type=submit]")
    page.locator("#notice").wait_for()
    assert page.input_value("#t-node-badge-alt") == "خُبز في {{ market.name }}"
    assert page.locator('#row-node\\.badge\\.alt').get_attribute("data-status") == "done"
    assert page.locator('[data-count="missing"]').inner_text() != missing
