"""Every staff page under unhappy data, at 390x844 and 1440x900 (#21): held changes waiting,
long names (items at the 120-character limit, 200-character story titles), content in
Arabic and Chinese, and an empty market (no items, no stories). On each page axe-core finds
no serious or critical violation and nothing is wider than the viewport (no cut-off table
or overprinted line on a phone); with HOLOBAZAAR_SCREENSHOTS=1 each page is saved under
docs/studio/ as screens-<page>-<size>.png. One server and one browser page per size."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from studio.inventory_content import configure_feed, push

from support.accounts import Accounts
from support.browser import AXE
from support.live import LiveServer, start_server
from support.studio import SIZES, sessions_for, shoot
from support.studio import axe_serious as _axe

pytestmark = pytest.mark.browser

LONG = ("Heirloom Brandywine tomatoes, vine-ripened on the south slope, hand-picked at dawn "
        "and packed in reusable wooden crates")[:120]
ARABIC = "تمور مجدول عضوية من الوادي"
CHINESE = "山东有机大白菜\uff0c霜降后采收"
STORY_TITLE = ("A very long story title that goes on and on about the first frost of the year "
               "on the orchard, the apples that stayed on the trees and what the bees did "
               "when the sun finally came back out in the afternoon")[:200]
MARKET = """\
format: 1
market: {{id: {m}, name: {name}, currency: EUR}}
zones: [{{id: hall, name: Hall}}]
farms:
  - {{id: hill-farm, name: Hill Farm}}
  - {{id: wadi-farm, name: "مزرعة الوادي"}}
{items}
"""
ITEMS = f"""\
items:
  - {{sku: APL-1, name: Apples, price: "2.50", unit: kg, stock: 10, farm: hill-farm}}
  - {{sku: TOM-LONG-HEIRLOOM-BRANDYWINE-2026, name: "{LONG}", price: "6.50", unit: kg,
     stock: 18, farm: hill-farm}}
  - {{sku: DATE-1, name: "{ARABIC}", price: "12.00", unit: box, stock: 3, farm: wadi-farm}}
  - {{sku: CAB-1, name: "{CHINESE}", price: "1.80", unit: each, stock: 0, status: sold_out,
     farm: hill-farm}}
"""
DISPLAY = """\
format: 1
display:
  id: stall
  zone: hall
  title: Stall
  farm: hill-farm
  items: [APL-1, TOM-LONG-HEIRLOOM-BRANDYWINE-2026]
  nodes:
    - {id: price, kind: text, item: APL-1, text: "price"}
"""


def _content(root: Path) -> Path:
    for market, name, items in (("alpha", "Market alpha", ITEMS),
                                ("beta", "Empty market", "items: []")):
        folder = root / "scenes" / market / "displays"
        folder.mkdir(parents=True)
        (folder.parent / "market.yaml").write_text(MARKET.format(m=market, name=name,
                                                                 items=items))
        if market == "alpha":
            (folder / "stall.yaml").write_text(DISPLAY)
    (root / "assets").mkdir()
    return root


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("screens")
    server = start_server(root, content_dir=_content(root / "content"), watch=False,
                          hold_price_change=20.0)
    accounts = Accounts(server)
    accounts.user("root", ["admin"], [])
    accounts.user("hana", ["grower"], ["alpha"], farm="hill-farm")
    for name in ("carol", "dave", "fatima-al-hashemi-long-account-name"):
        accounts.user(name, ["curator"], ["alpha"])
    accounts.token(["performer"], ["alpha"], name="qlab booth " + CHINESE)
    secret = configure_feed(server)
    push(server, secret, {"sku": "APL-1", "price": "9.99"})  # held: a large change
    push(server, secret, {"sku": "TOM-LONG-HEIRLOOM-BRANDYWINE-2026", "price": "19.50"})
    with server.client() as visitor:  # a visitor's story and recipe wait for moderation
        visitor.post("/m/alpha/send", data={"kind": "story", "title": STORY_TITLE,
                                            "author": "فاطمة", "body": CHINESE * 20})
        visitor.post("/m/alpha/send", data={"kind": "recipe", "title": f"{ARABIC} tart",
                                            "body": "x", "ingredients": f"{ARABIC}\nflour",
                                            "instructions": "Bake."})
    token = accounts.token(["curator"], ["alpha"], name="writer")
    with server.client() as api:
        made = api.post("/api/v1/markets/alpha/stories", headers={
            "Authorization": f"Bearer {token}"}, json={
            "slug": "long-story", "title": STORY_TITLE, "author": "carol",
            "body": f"# {CHINESE}\n\n{ARABIC} " * 5 + "\n\n" + "word " * 200})
        assert made.status_code == 201, made.text
    yield server
    server.stop()


PAGES = (("home", "/home"), ("inventory", "/studio/alpha/inventory"),
         ("truth", "/studio/alpha/truth"), ("stories", "/studio/alpha/stories"),
         ("story-editor", "/studio/alpha/stories/story/long-story"),
         ("moderation", "/studio/alpha/moderation"), ("staff", "/studio/alpha/staff"),
         ("grower", "/studio/alpha/grower?farm=hill-farm"), ("password", "/account/password"),
         ("empty-inventory", "/studio/beta/inventory"), ("empty-stories", "/studio/beta/stories"),
         ("empty-moderation", "/studio/beta/moderation"))
AXED_ON_DESK = {"home", "inventory", "truth", "stories", "story-editor", "moderation", "staff",
                "grower"}  # by test_inventory_browser, test_stories_browser, test_staff_browser
WIDER = """() => [...document.querySelectorAll('body *')].filter((e) => {
  const r = e.getBoundingClientRect();
  return r.width > 0 && r.right > document.documentElement.clientWidth + 1
    && getComputedStyle(e).position !== 'absolute' && !e.closest('nav.sections, .scroll');
}).slice(0, 5).map((e) => e.tagName + (e.id ? '#' + e.id : '') + '.' + e.className)"""


@pytest.mark.parametrize("size", ["phone", "desktop"])
def test_every_staff_page_under_unhappy_data(live, browser, size) -> None:
    if not AXE.is_file():
        pytest.skip("axe-core not installed: cd web-client && npm ci")
    with sessions_for(browser, allowed=("status of 4",)) as open_session:
        page = open_session(live, SIZES[size]).login("root", "/home").page
        found, wide = {}, {}
        for name, path in PAGES:
            page.goto(live.url + path)
            # axe takes a second a page: on a desk only for the pages the other studio
            # browser modules do not already check at 1440x900 (the suite's time budget).
            bad = _axe(page) if size == "phone" or name not in AXED_ON_DESK else []
            if bad:
                found[name] = bad
            overflow = page.evaluate(WIDER)
            if overflow:
                wide[name] = overflow
            shoot(page, f"screens-{name}", size)
        # A grower on their phone: their own page as they see it.
        grower = open_session(live, SIZES[size]).login("hana", "/studio/alpha/grower").page
        bad = _axe(grower)
        if bad:
            found["grower-own"] = bad
        if grower.evaluate(WIDER):
            wide["grower-own"] = grower.evaluate(WIDER)
        shoot(grower, "screens-grower-own", size)
    assert found == {} and wide == {}
