"""A grower's own page (#21): only their farm's items (stock, sold out; prices when the
market allows it, under the hold policy), 403 for another farm's item on the page and on
the API, their stall's pulse figures (k-anonymous), their farm's profile and stories;
/studio/<m> leads a grower there."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import httpx
import pytest

from studio.grower_content import start

from support.accounts import Accounts, csrf_from
from support.live import LiveServer


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = start(tmp_path_factory.mktemp("grower"))
    accounts = Accounts(server)
    accounts.user("hana", ["grower"], ["alpha"], farm="hill-farm")
    accounts.user("rio", ["grower"], ["alpha"], farm="river-farm")
    accounts.user("carol", ["curator"], ["alpha"])
    yield server
    server.stop()


def signed_in(live: LiveServer, name: str) -> tuple[httpx.Client, str]:
    client = live.client()
    Accounts(live).login(client, name)
    page = client.get("/studio/alpha/grower")
    assert page.status_code == 200, page.text
    return client, csrf_from(page.text)


@pytest.fixture(scope="module")
def hana(live: LiveServer) -> Iterator[tuple[httpx.Client, str]]:
    client, csrf = signed_in(live, "hana")
    yield client, csrf
    client.close()


def version(page: str, sku: str) -> str:
    block = page.split(f'id="item-{sku}"', 1)[1]
    return re.search(r'name="version" value="([^"]*)"', block).group(1)


def change(client_csrf: tuple[httpx.Client, str], sku: str, **data: str) -> httpx.Response:
    client, csrf = client_csrf
    page = client.get("/studio/alpha/grower").text
    data.setdefault("version", version(page, sku) if f'id="item-{sku}"' in page else "")
    return client.post(f"/studio/alpha/grower/items/{sku}", data={"csrf": csrf, **data})


def item(live: LiveServer, sku: str):
    return live.app.state.services.scenes.items["alpha"][sku]  # type: ignore[attr-defined]


def test_a_grower_lands_on_their_farm_and_sees_only_its_items(live, hana):
    client, _ = hana
    landed = client.get("/home", follow_redirects=True)  # where sign-in sends them
    assert landed.url.path == "/studio/alpha/grower"
    r = client.get("/studio/alpha")
    assert r.status_code == 303 and r.headers["location"] == "/studio/alpha/grower"
    page = client.get("/studio/alpha/grower").text
    assert "<h1>Hill Farm</h1>" in page
    assert 'id="item-APL-1"' in page and 'id="item-PEAR-1"' in page
    assert "HON-1" not in page and "Honey" not in page
    assert 'href="/studio/alpha/grower" aria-current="page">My farm' in page
    assert 'href="/studio/alpha/truth"' not in page and 'href="/studio/alpha/staff"' not in page
    assert "Prices are set by the market" in page and 'name="price"' not in page
    inventory = client.get("/studio/alpha/inventory")  # the inventory page: their farm only
    assert inventory.status_code == 200
    assert 'id="item-APL-1"' in inventory.text and 'id="item-HON-1"' not in inventory.text
    for other in ("/studio/alpha/truth", "/studio/alpha/staff", "/studio/beta/grower",
                  "/studio/beta/inventory"):
        assert client.get(other).status_code == 403, other


def test_set_stock_and_mark_sold_out(live, hana):
    r = change(hana, "PEAR-1", action="stock", stock="7")
    assert r.status_code == 303, r.text
    assert item(live, "PEAR-1").stock == 7
    page = hana[0].get(r.headers["location"]).text
    assert "Saved: Pears, stock 7." in page
    r = change(hana, "PEAR-1", action="soldout")
    assert r.status_code == 303
    facts = item(live, "PEAR-1")
    assert facts.stock == 0 and facts.status == "sold_out"
    with live.client() as visitor:
        shown = visitor.get("/api/v1/markets/alpha/items").json()
        assert next(i for i in shown if i["sku"] == "PEAR-1")["status"] == "sold_out"
    r = change(hana, "PEAR-1", action="stock", stock="3")
    assert r.status_code == 303 and item(live, "PEAR-1").status == "in_stock"


def test_bad_stock_is_answered_next_to_the_field(live, hana):
    before = item(live, "APL-1")
    for bad in ("", "-1", "two", "1.5", "99999999999"):
        r = change(hana, "APL-1", action="stock", stock=bad)
        assert r.status_code == 400, bad
        assert re.search(r'<p class="field-error" id="stock-APL-1-err">Enter a whole number',
                         r.text), bad
    assert item(live, "APL-1") == before
    r = change(hana, "APL-1", action="stock", stock="5", version="0" * 16)
    assert r.status_code == 409 and "changed this item since" in r.text
    assert item(live, "APL-1") == before
    r = change(hana, "APL-1", action="price", price="9.99")
    assert r.status_code == 400 and item(live, "APL-1").price == before.price


def test_another_farms_item_is_403_on_the_page_and_the_api(live, hana):
    client, csrf = hana
    before = item(live, "HON-1")
    r = change(hana, "HON-1", action="soldout")
    assert r.status_code == 403
    r = change(hana, "NO-SUCH", action="soldout")
    assert r.status_code == 403
    api = "/api/v1/markets/alpha/items"
    headers = {"X-CSRF-Token": csrf}
    assert client.get(f"{api}/HON-1").status_code == 403
    assert client.patch(f"{api}/HON-1", json={"stock": 0}, headers=headers).status_code == 403
    assert item(live, "HON-1") == before
    # Their own item through the API: stock yes; name and price (not allowed here) no.
    r = client.get(f"{api}/APL-1")
    assert r.status_code == 200
    r = client.patch(f"{api}/APL-1", json={"stock": 12},
                     headers={**headers, "If-Match": r.headers["ETag"]})
    assert r.status_code == 200 and r.json()["stock"] == 12
    assert client.patch(f"{api}/APL-1", json={"name": "Mine"},
                        headers=headers).status_code == 403
    assert client.patch(f"{api}/APL-1", json={"price": "1.00"},
                        headers=headers).status_code == 403
    assert client.post(api, json={"sku": "X-1", "name": "X", "price": "1"},
                       headers=headers).status_code == 403
    assert client.delete(f"{api}/APL-1", headers=headers).status_code == 403
    # The beta market's items are not theirs either.
    assert client.patch("/api/v1/markets/beta/items/APL-1", json={"stock": 1},
                        headers=headers).status_code == 403


def test_curators_open_any_farms_page(live):
    client, csrf = signed_in(live, "carol")
    page = client.get("/studio/alpha/grower?farm=river-farm").text
    assert "<h1>River Farm</h1>" in page and 'id="item-HON-1"' in page
    assert 'id="farm-pick"' in page
    r = client.post("/studio/alpha/grower/items/HON-1?farm=river-farm", data={
        "csrf": csrf, "action": "stock", "stock": "2"})
    assert r.status_code == 303 and item(live, "HON-1").stock == 2
    client.close()


def test_the_stall_pulse_is_shown_only_for_groups_of_k(live, hana):
    pulse = live.app.state.services.pulse  # type: ignore[attr-defined]
    k = pulse.settings.k

    async def react() -> None:
        now = time.time()
        for i in range(k + 1):
            pulse.ingest({"market": "alpha", "display": "hill-stall", "zone": "hall",
                          "kind": "love", "dwell": None, "recipe": None,
                          "device": f"d{i:015d}", "at": now})
        for i in range(k - 1):
            pulse.ingest({"market": "alpha", "display": "river-stall", "zone": "hall",
                          "kind": "wow", "dwell": None, "recipe": None,
                          "device": f"r{i:015d}", "at": now})

    live.call(react)
    page = hana[0].get("/studio/alpha/grower").text
    section = page.split('id="pulse-h"', 1)[1].split("</section>", 1)[0]
    assert "Hill Farm stall" in section and "River Farm stall" not in section
    assert f"<b>{k + 1}</b>visitors" in section
    with live.client() as client:
        Accounts(live).login(client, "rio")
        section = client.get("/studio/alpha/grower").text.split('id="pulse-h"', 1)[1]
        assert f"Fewer than {k} visitors" in section.split("</section>", 1)[0]


def test_farm_profile_text_is_escaped(live, hana):
    page = hana[0].get("/studio/alpha/grower").text
    assert "Your farm&#39;s profile" in page or "Your farm's profile" in page
    assert 'href="/studio/alpha/stories"' in page


def test_prices_when_the_market_allows_it_through_the_hold_policy(tmp_path):
    server = start(tmp_path, growers_set_prices=True, four_eyes=True)
    try:
        Accounts(server).user("hana", ["grower"], ["alpha"], farm="hill-farm")
        pair = signed_in(server, "hana")
        assert 'id="price-APL-1"' in pair[0].get("/studio/alpha/grower").text
        r = change(pair, "APL-1", action="price", price="2.60")  # +4%: applied
        assert r.status_code == 303, r.text
        assert str(item(server, "APL-1").price) in ("2.6", "2.60", "2.6000")
        r = change(pair, "APL-1", action="price", price="abc")
        assert r.status_code == 400 and 'id="price-APL-1-err"' in r.text
        r = change(pair, "APL-1", action="price", price="5.00")  # +92%: confirm first
        assert r.status_code == 409 and "Confirm 5.00" in r.text
        assert str(item(server, "APL-1").price).startswith("2.6")
        r = change(pair, "APL-1", action="price", price="5.00", confirm="1")
        assert r.status_code == 303  # four eyes: waits for a curator
        page = pair[0].get(r.headers["location"]).text
        assert "waits for a curator" in page
        assert str(item(server, "APL-1").price).startswith("2.6")
        pair[0].close()
    finally:
        server.stop()


def test_a_grower_writes_their_farms_stories_and_a_curator_publishes(live, hana):
    client, csrf = hana
    headers = {"X-CSRF-Token": csrf}
    base = "/api/v1/markets/alpha/stories"
    doc = {"kind": "story", "slug": "hill-orchard", "title": "The orchard",
           "body": "Our *apples*."}
    r = client.post(base, json=doc, headers=headers)
    assert r.status_code == 201, r.text
    assert r.json()["document"]["producers"] == ["hill-farm"]  # their farm, filled in
    assert client.post(base, json={**doc, "slug": "river-tale", "producers": ["river-farm"]},
                       headers=headers).status_code == 403
    assert client.post(base, json={**doc, "slug": "x-pub", "status": "published"},
                       headers=headers).status_code in (403, 422)
    r = client.put(f"{base}/hill-orchard", json={**doc, "producers": ["hill-farm"],
                                                 "body": "Our *pears*."}, headers=headers)
    assert r.status_code == 200, r.text
    r = client.post(f"{base}/hill-orchard/status", json={"status": "review"}, headers=headers)
    assert r.status_code == 200 and r.json()["status"] == "review"
    assert client.post(f"{base}/hill-orchard/status", json={"status": "published"},
                       headers=headers).status_code == 403
    assert client.post(f"{base}/hill-orchard/publish", headers=headers).status_code == 403
    listed = client.get(base).json()
    assert [d["slug"] for d in listed["results"]] == ["hill-orchard"]
    page = client.get("/studio/alpha/grower").text
    assert "The orchard" in page and "(review)" in page

    with live.client() as curator_client:
        Accounts(live).login(curator_client, "carol")
        ccsrf = csrf_from(curator_client.get("/studio/alpha/inventory").text)
        r = curator_client.post(f"{base}/hill-orchard/publish",
                                headers={"X-CSRF-Token": ccsrf})
        assert r.status_code == 200, r.text
        r = curator_client.post(base, json={**doc, "slug": "river-tale",
                                             "producers": ["river-farm"]},
                                headers={"X-CSRF-Token": ccsrf})
        assert r.status_code == 201
    # Published: the curators' now. Another farm's story: not theirs to read or change.
    assert client.put(f"{base}/hill-orchard", json={**doc, "producers": ["hill-farm"]},
                      headers=headers).status_code == 403
    assert client.get(f"{base}/river-tale").status_code == 403
    assert client.put(f"{base}/river-tale", json={**doc, "producers": ["hill-farm"]},
                      headers=headers).status_code == 403
    assert client.get(f"{base}/river-tale/revisions").status_code == 403


def test_the_open_page_rereads_only_its_farms_items(live, hana):
    client, _ = hana
    rows = client.get("/studio/alpha/grower?part=items&farm=river-farm").json()
    assert sorted(r["sku"] for r in rows) == ["APL-1", "PEAR-1"]  # their farm, whatever ?farm
    assert all(set(r) == {"sku", "stock", "status", "status_text", "price", "version"}
               for r in rows)
    page = client.get("/studio/alpha/grower").text
    assert 'data-src="/studio/alpha/grower?part=items"' in page
