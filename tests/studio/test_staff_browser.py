"""The staff and grower pages in Debian's Chromium (Playwright, #21): an admin creates a
performer token on the staff page and revokes it (the token stops working on the API); a
grower on a phone marks an item sold out (an open visitor page shows it) and gets 403 for
another farm's item on the page and on the API; axe-core finds no serious or critical
violation on either page at 390x844 and 1440x900 (screenshots into docs/studio/ with
HOLOBAZAAR_SCREENSHOTS=1)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from studio.grower_content import start

from support.accounts import Accounts
from support.browser import AXE
from support.live import LiveServer
from support.studio import DESKTOP, PHONE, sessions_for, shoot
from support.studio import axe_serious as _axe

pytestmark = pytest.mark.browser


@pytest.fixture
def sessions(browser) -> Iterator:
    with sessions_for(browser, allowed=("status of 403", "status of 400")) as open_session:
        yield open_session


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    server = start(tmp_path)
    accounts = Accounts(server)
    accounts.user("root", ["admin"], [])
    accounts.user("hana", ["grower"], ["alpha"], farm="hill-farm")
    yield server
    server.stop()


def test_an_admin_creates_a_performer_token_and_revokes_it(live, sessions):
    page = sessions(live).login("root", "/studio/alpha/staff").page
    page.fill("#tok-name", "qlab booth")
    page.select_option("#tok-role", "performer")
    page.fill("#tok-expires", "12h")
    page.click("form[action$='/staff/tokens'] button[type=submit]")
    page.wait_for_selector("#secret-value")
    token = page.input_value("#secret-value")
    assert token.startswith("hbt_")
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=live.url) as script:
        assert script.get("/api/v1/shows/alpha", headers=auth).status_code == 200
        page.goto(f"{live.url}/studio/alpha/staff")
        assert token not in page.content()  # shown once
        row = page.locator("tr", has=page.locator("strong", has_text="qlab booth"))
        assert "active" in row.inner_text()
        row.get_by_role("button", name="Revoke token qlab booth").click()
        page.wait_for_selector("text=Revoked token 'qlab booth'")
        assert "revoked" in page.locator(
            "tr", has=page.locator("strong", has_text="qlab booth")).inner_text()
        assert script.get("/api/v1/shows/alpha", headers=auth).status_code == 401


def test_a_grower_on_a_phone_marks_an_item_sold_out_and_cannot_touch_another_farm(
        live, sessions):
    visitor = sessions(live, PHONE)
    visitor.page.goto(f"{live.url}/d/alpha/hill-stall")
    visitor.page.wait_for_selector('#products li[data-sku="PEAR-1"]')
    assert "Sold out" not in visitor.page.inner_text('#products li[data-sku="PEAR-1"]')
    grower = sessions(live, PHONE)
    grower.page.goto(f"{live.url}/login?next=/studio")
    grower.page.fill("#username", "hana")
    grower.page.fill("#password", "correct horse battery")
    grower.page.click("button[type=submit]")
    grower.page.wait_for_url("**/studio/alpha/grower")  # /studio leads a grower to their farm
    page = grower.page
    assert page.locator("h1").inner_text() == "Hill Farm"
    assert page.locator("#item-HON-1").count() == 0
    page.get_by_role("button", name="Mark Pears sold out").click()
    page.wait_for_selector("text=Saved: Pears, sold out.")
    assert page.inner_text('#item-PEAR-1 [data-role="status"]') == "sold out"
    visitor.page.wait_for_function(
        "document.querySelector('#products li[data-sku=\"PEAR-1\"]').textContent"
        ".includes('Sold out')", timeout=10_000)
    # A change made elsewhere (a curator, the feed) reaches the open page.
    with httpx.Client(base_url=live.url) as other:
        Accounts(live).user("carol", ["curator"], ["alpha"])
        Accounts(live).login(other, "carol")
        csrf = other.get("/studio/alpha/inventory").text.split(
            'name="csrf-token" content="')[1].split('"')[0]
        assert other.patch("/api/v1/markets/alpha/items/APL-1", json={"stock": 2},
                           headers={"X-CSRF-Token": csrf}).status_code == 200
    page.evaluate("document.getElementById('items').follow()")
    page.wait_for_function("document.getElementById('stock-APL-1').value === '2'")
    assert "2 left" in page.inner_text("#item-APL-1")
    # Another farm: not on the page whatever the address says, 403 on a post and the API.
    page.goto(f"{live.url}/studio/alpha/grower?farm=river-farm")
    assert page.locator("h1").inner_text() == "Hill Farm"
    csrf = page.get_attribute("meta[name=csrf-token]", "content")
    answer = page.request.post(f"{live.url}/studio/alpha/grower/items/HON-1",
                               form={"csrf": csrf, "action": "stock", "stock": "5"})
    assert answer.status == 403
    status = page.evaluate("""async (csrf) => (await fetch('/api/v1/markets/alpha/items/HON-1',
        {method: 'PATCH', headers: {'Content-Type': 'application/json', 'X-CSRF-Token': csrf},
         body: JSON.stringify({stock: 5})})).status""", csrf)
    assert status == 403
    assert live.app.state.services.scenes.items["alpha"]["HON-1"].status == "sold_out"  # as seeded
    assert live.app.state.services.scenes.items["alpha"]["HON-1"].stock == 0


@pytest.mark.parametrize("size", ["phone", "desktop"])
def test_axe_finds_no_serious_violation_on_staff_and_grower_pages(live, sessions, size):
    if not AXE.is_file():
        pytest.skip("axe-core not installed: cd web-client && npm ci")
    viewport = PHONE if size == "phone" else DESKTOP
    found = {}
    admin = sessions(live, viewport).login("root", "/studio/alpha/staff")
    page = admin.page
    page.fill("#tok-name", "osc bridge")
    page.click("form[action$='/staff/tokens'] button[type=submit]")
    page.wait_for_selector("#secret-value")
    bad = _axe(page)
    if bad:
        found["staff-secret"] = bad
    # A refused form: messages next to the fields.
    page.fill("#new-name", "Bad Name!")
    page.select_option("#new-role", "grower")
    page.click("form[action$='/staff/users'] button[type=submit]")
    page.wait_for_selector("#new-name-err")
    bad = _axe(page)
    if bad:
        found["staff"] = bad
    shoot(page, "staff", size)
    pulse = live.app.state.services.pulse  # type: ignore[attr-defined]

    async def react() -> None:  # enough visitors at the stall for figures to show
        now = time.time()
        for i in range(pulse.settings.k + 3):
            pulse.ingest({"market": "alpha", "display": "hill-stall", "zone": "hall",
                          "kind": ("love", "hungry", "learn")[i % 3], "dwell": None,
                          "recipe": None, "device": f"d{i:015d}", "at": now})

    live.call(react)
    grower = sessions(live, viewport).login("hana", "/studio/alpha/grower")
    bad = _axe(grower.page)
    if bad:
        found["grower"] = bad
    shoot(grower.page, "grower", size)
    assert found == {}
