"""The studio's inventory page and the API it uses: the list, adding and retiring items
(forms with messages next to the field), inline edits under the hold policy (confirm,
four eyes), stale saves (412, never a silent overwrite), file import (check, then all or
nothing), feed health and secret rotation, and 403 for another market."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from studio.inventory_content import start

from support.accounts import Accounts, csrf_from
from support.live import LiveServer


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    server = start(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def staff(live: LiveServer) -> Accounts:
    accounts = Accounts(live)
    accounts.user("carol", ["curator"], ["alpha"])
    accounts.user("dave", ["curator"], ["alpha"])
    accounts.user("root", ["admin"], [])
    return accounts


def signed_in(live: LiveServer, staff: Accounts, name: str) -> tuple[httpx.Client, str]:
    client = live.client()
    staff.login(client, name)
    page = client.get("/studio/alpha/inventory")
    assert page.status_code == 200, page.text
    return client, csrf_from(page.text)


def version(page: str, sku: str) -> str:
    match = re.search(rf'id="item-{sku}" data-sku="{sku}" data-name="[^"]*" '
                      r'data-version="([0-9a-f]+)"', page)
    assert match, f"no row for {sku}"
    return match.group(1)


def api(client: httpx.Client, csrf: str, method: str, path: str, **kw) -> httpx.Response:
    headers = {"X-CSRF-Token": csrf, **kw.pop("headers", {})}
    return client.request(method, f"/api/v1/markets/alpha/items{path}", headers=headers, **kw)


def test_the_list_shows_every_item_with_its_facts(live, staff):
    client, _ = signed_in(live, staff, "carol")
    page = client.get("/studio/alpha/inventory").text
    for text in ("Apples", "APL-1", "Hill Farm", "River Farm", "2.50", "EUR / kg", "sold out",
                 "content", "Feed health", "No feed configured", "Add an item",
                 "Import a file"):
        assert text in page
    assert 'aria-current="page">Inventory' in page
    assert "Rotate the webhook secret" not in page  # admins only


def test_the_page_reads_its_rows_as_they_are_now(live, staff):
    client, csrf = signed_in(live, staff, "carol")
    before = client.get("/studio/alpha/inventory?part=rows").json()
    assert before["total"] == 3 and before["items"]["APL-1"]["price"] == "2.50"
    assert api(client, csrf, "PATCH", "/APL-1", json={"stock": 2}).status_code == 200
    after = client.get("/studio/alpha/inventory", params={"part": "rows", "q": "apple"}).json()
    assert list(after["items"]) == ["APL-1"] and after["items"]["APL-1"]["stock"] == 2
    assert after["items"]["APL-1"]["version"] != before["items"]["APL-1"]["version"]


def test_another_markets_page_and_api_are_403(live, staff):
    client, csrf = signed_in(live, staff, "carol")
    assert client.get("/studio/beta/inventory").status_code == 403
    assert client.get("/studio/beta/inventory?part=rows").status_code == 403
    r = client.patch("/api/v1/markets/beta/items/APL-1", json={"stock": 3},
                     headers={"X-CSRF-Token": csrf})
    assert r.status_code == 403
    r = client.post("/studio/beta/inventory/items", data={"csrf": csrf, "sku": "X-1",
                                                          "name": "X", "price": "1"})
    assert r.status_code == 403
    r = client.post("/api/v1/markets/beta/items/import?format=csv&dry_run=true",
                    content=b"sku,stock\nAPL-1,1\n", headers={"X-CSRF-Token": csrf})
    assert r.status_code == 403
    with live.client() as anonymous:
        r = anonymous.get("/studio/alpha/inventory")
        assert r.status_code == 303 and r.headers["location"].startswith("/login")


def test_add_an_item_with_messages_next_to_the_fields_and_html_as_text(live, staff):
    client, csrf = signed_in(live, staff, "carol")
    bad = client.post("/studio/alpha/inventory/items", data={
        "csrf": csrf, "sku": "has space", "name": "", "price": "-1", "stock": "many",
        "farm": "nowhere"})
    assert bad.status_code == 422
    for field in ("sku", "name", "price", "stock", "farm"):
        assert f'id="add-{field}-err"' in bad.text, field
    assert "Enter a price of 0 or more" in bad.text
    assert 'value="has space"' in bad.text  # what was typed stays
    assert client.get("/api/v1/markets/alpha/items").json()[-1]["sku"] != "has space"
    # No CSRF token: refused.
    assert client.post("/studio/alpha/inventory/items", data={"sku": "A"}).status_code == 403
    ok = client.post("/studio/alpha/inventory/items", data={
        "csrf": csrf, "sku": "TOM-1", "name": "<script>alert(1)</script> Tomatoes",
        "price": "4.20", "unit": "kg", "stock": "7", "farm": "river-farm"})
    assert ok.status_code == 303 and "added=TOM-1" in ok.headers["location"]
    page = client.get(ok.headers["location"]).text
    assert "Added TOM-1." in page
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Tomatoes" in page
    item = client.get("/api/v1/markets/alpha/items/TOM-1").json()
    assert (item["price"], item["stock"], item["farm"]) == ("4.20", 7, "river-farm")
    again = client.post("/studio/alpha/inventory/items", data={
        "csrf": csrf, "sku": "TOM-1", "name": "Again", "price": "1"})
    assert again.status_code == 409 and "There is already an item TOM-1" in again.text


def test_create_and_retire_through_the_api(live, staff):
    client, csrf = signed_in(live, staff, "carol")
    r = api(client, csrf, "POST", "", json={"sku": "EGG-1", "name": "Eggs", "price": "0.40"})
    assert r.status_code == 201 and r.json()["unit"] == "each" and r.headers["etag"]
    assert api(client, csrf, "POST", "", json={"sku": "EGG-1", "name": "E",
                                               "price": "1"}).status_code == 409
    r = api(client, csrf, "POST", "", json={"sku": "", "name": "E", "price": "NaN"})
    assert r.status_code == 422
    etag = r = api(client, csrf, "GET", "/EGG-1").headers["etag"]
    stale = api(client, csrf, "DELETE", "/EGG-1", headers={"If-Match": '"0000000000000000"'})
    assert stale.status_code == 412 and stale.json()["code"] == "stale_version"
    r = api(client, csrf, "DELETE", "/EGG-1", headers={"If-Match": etag})
    assert r.status_code == 200 and r.json()["retired"] == "EGG-1"
    assert api(client, csrf, "GET", "/EGG-1").status_code == 404
    history = client.get("/api/v1/markets/alpha/items/EGG-1/history").json()["records"]
    assert [h["status"] for h in history] == ["in_stock", "removed"]


def test_retire_from_the_page_and_a_stale_page_gets_a_conflict(live, staff):
    client, csrf = signed_in(live, staff, "carol")
    page = client.get("/studio/alpha/inventory").text
    old = version(page, "PEAR-1")
    # Someone else changes the pears after the page was loaded.
    other, other_csrf = signed_in(live, staff, "dave")
    assert api(other, other_csrf, "PATCH", "/PEAR-1", json={"stock": 2}).status_code == 200
    r = client.post("/studio/alpha/inventory/items/PEAR-1/retire",
                    data={"csrf": csrf, "version": old})
    assert r.status_code == 409 and "changed by someone else" in r.text
    assert api(client, csrf, "GET", "/PEAR-1").status_code == 200  # not retired
    fresh = version(client.get("/studio/alpha/inventory").text, "PEAR-1")
    r = client.post("/studio/alpha/inventory/items/PEAR-1/retire",
                    data={"csrf": csrf, "version": fresh})
    assert r.status_code == 303
    assert 'id="item-PEAR-1"' not in client.get(r.headers["location"]).text


def test_a_stale_inline_save_is_a_conflict_not_an_overwrite(live, staff):
    client, csrf = signed_in(live, staff, "carol")
    seen = version(client.get("/studio/alpha/inventory").text, "APL-1")
    other, other_csrf = signed_in(live, staff, "dave")
    assert api(other, other_csrf, "PATCH", "/APL-1", json={"stock": 3}).status_code == 200
    r = api(client, csrf, "PATCH", "/APL-1", json={"stock": 9},
            headers={"If-Match": f'"{seen}"'})
    assert r.status_code == 412
    assert r.json()["item"]["stock"] == 3 and r.json()["version"] != seen
    assert api(client, csrf, "GET", "/APL-1").json()["stock"] == 3
    r = api(client, csrf, "PATCH", "/APL-1", json={"stock": 9},
            headers={"If-Match": f'"{r.json()["version"]}"'})
    assert r.status_code == 200 and r.json()["stock"] == 9


def test_a_large_change_needs_confirmation(live, staff):
    client, csrf = signed_in(live, staff, "carol")
    r = api(client, csrf, "PATCH", "/APL-1", json={"price": "3.50"})  # +40%
    assert r.status_code == 409 and r.json()["code"] == "confirmation_required"
    assert r.json()["change"]["percent"] == 40.0
    assert api(client, csrf, "GET", "/APL-1").json()["price"] == "2.50"
    r = api(client, csrf, "PATCH", "/APL-1", json={"price": "3.50", "confirm": True})
    assert r.status_code == 200 and r.json()["price"] == "3.50"
    bad = api(client, csrf, "PATCH", "/APL-1", json={"price": "abc", "stock": -1})
    assert bad.status_code == 422
    assert {e["loc"][-1] for e in bad.json()["detail"]} == {"price", "stock"}


def test_four_eyes_waits_for_a_second_curator(tmp_path):
    live = start(tmp_path, four_eyes=True)
    try:
        staff = Accounts(live)
        staff.user("carol", ["curator"], ["alpha"])
        staff.user("dave", ["curator"], ["alpha"])
        client, csrf = signed_in(live, staff, "carol")
        r = api(client, csrf, "PATCH", "/APL-1", json={"price": "3.50", "confirm": True})
        assert r.status_code == 202 and r.json()["status"] == "pending"
        page = client.get("/studio/alpha/inventory").text
        assert "waiting for a second curator: 3.50 EUR (asked by carol)" in page
        held = r.json()["held"]
        own = client.post(f"/api/v1/reconcile/alpha/held/{held}/approve",
                          headers={"X-CSRF-Token": csrf})
        assert own.status_code == 403
        other, other_csrf = signed_in(live, staff, "dave")
        ok = other.post(f"/api/v1/reconcile/alpha/held/{held}/approve",
                        headers={"X-CSRF-Token": other_csrf}, json={"reason": "checked"})
        assert ok.status_code == 200
        assert api(client, csrf, "GET", "/APL-1").json()["price"] == "3.50"
    finally:
        live.stop()


def _import(client, csrf, body: bytes, fmt: str = "csv", **params) -> httpx.Response:
    query = "&".join(f"{k}={str(v).lower()}" for k, v in {"format": fmt, **params}.items())
    return client.post(f"/api/v1/markets/alpha/items/import?{query}", content=body,
                       headers={"X-CSRF-Token": csrf})


def test_import_lists_every_bad_row_and_applies_nothing(live, staff):
    client, csrf = signed_in(live, staff, "carol")
    body = (b"sku,name,price,unit,stock\n"
            b"APL-1,,2.60,,\n"            # line 2: fine (+4%)
            b"NEW-1,New thing,,kg,3\n"    # line 3: a new item without a price
            b"PEAR-1,,-2,,\n"             # line 4: negative price
            b"bad sku,X,1,kg,1\n"         # line 5: bad SKU
            b"KIWI-1,Kiwis,0.90,each,12\n")
    check = _import(client, csrf, body, dry_run=True)
    assert check.status_code == 422
    report = check.json()
    assert report["code"] == "bad_rows" and report["rows"] == 5
    assert [e["line"] for e in report["errors"]] == [3, 4, 5]
    assert "a new item needs at least name and price" in report["errors"][0]["error"]
    applied = _import(client, csrf, body, dry_run=False)
    assert applied.status_code == 422 and applied.json()["applied"] is False
    items = {i["sku"]: i for i in client.get("/api/v1/markets/alpha/items").json()}
    assert items["APL-1"]["price"] == "2.50" and "KIWI-1" not in items  # nothing half-applied
    unreadable = _import(client, csrf, b"name,price\nx,1\n", dry_run=True)
    assert unreadable.status_code == 422 and "'sku' column" in unreadable.json()["detail"]


def test_import_checks_then_applies_all_with_confirmation_for_large_changes(live, staff):
    client, csrf = signed_in(live, staff, "carol")
    body = (b"\xef\xbb\xbfsku,name,price,unit,stock,producer\n"
            b"APL-1,,2.60,,8,\n"
            b"PEAR-1,,9.00,,,\n"  # +200%
            b"KIWI-1,Kiwis <b>green</b>,0.90,each,12,river-farm\n")
    check = _import(client, csrf, body, dry_run=True)
    assert check.status_code == 200, check.text
    report = check.json()
    assert (report["rows"], report["new"], report["updates"], report["large_count"]) == (
        3, 1, 2, 1)
    assert report["large"][0]["sku"] == "PEAR-1" and report["large"][0]["line"] == 3
    assert _import(client, csrf, body, dry_run=False).status_code == 409
    assert "KIWI-1" not in {i["sku"] for i in client.get("/api/v1/markets/alpha/items").json()}
    done = _import(client, csrf, body, dry_run=False, confirm=True)
    assert done.status_code == 200 and done.json()["applied"] is True
    items = {i["sku"]: i for i in client.get("/api/v1/markets/alpha/items").json()}
    assert (items["APL-1"]["price"], items["APL-1"]["stock"]) == ("2.60", 8)
    assert items["PEAR-1"]["price"] == "9.00" and items["KIWI-1"]["farm"] == "river-farm"
    page = client.get("/studio/alpha/inventory").text
    assert "Kiwis &lt;b&gt;green&lt;/b&gt;" in page and "<b>green</b>" not in page


def test_a_confirmed_import_from_a_price_of_zero_applies_and_holds_nothing(live, staff):
    client, csrf = signed_in(live, staff, "carol")
    assert api(client, csrf, "POST", "", json={"sku": "FREE-1", "name": "Free",
                                               "price": "0"}).status_code == 201
    body = b"sku,price\nFREE-1,2.00\n"
    check = _import(client, csrf, body, dry_run=True).json()
    assert check["large_count"] == 1 and check["large"][0]["percent"] is None
    assert _import(client, csrf, body, dry_run=False, confirm=True).json()["applied"]
    assert api(client, csrf, "GET", "/FREE-1").json()["price"] == "2.00"
    assert client.get("/api/v1/reconcile/alpha/held").json() == []


def test_import_streams_progress_for_a_large_file(live, staff):
    client, csrf = signed_in(live, staff, "carol")
    rows = 12_000
    body = "sku,name,price,unit,stock\n" + "".join(
        f"BULK-{i},Bulk item {i},{1 + i % 7}.25,kg,{i % 50}\n" for i in range(rows))
    r = client.post("/api/v1/markets/alpha/items/import?format=csv&dry_run=false",
                    content=body.encode(), timeout=60,
                    headers={"X-CSRF-Token": csrf, "Accept": "application/x-ndjson"})
    lines = [json.loads(line) for line in r.text.splitlines()]
    assert lines[-1]["done"] and lines[-1]["status"] == 200, lines[-1]
    assert lines[-1]["report"]["new"] == rows and lines[-1]["report"]["applied"]
    fractions = [line["fraction"] for line in lines[:-1]]
    assert fractions == sorted(fractions)
    assert len(client.get("/api/v1/markets/alpha/items").json()) == rows + 3
    # A big market's page lists the first rows; the search narrows on the server.
    page = client.get("/studio/alpha/inventory").text
    assert "12,003 items match: the first 300 are listed" in page
    assert page.count('<tr id="item-') == 300
    found = client.get("/studio/alpha/inventory", params={"q": "bulk item 11999"}).text
    assert found.count('<tr id="item-') == 1 and 'id="item-BULK-11999"' in found
    sold = client.get("/studio/alpha/inventory", params={"status": "sold_out",
                                                        "farm": "river-farm"}).text
    assert sold.count('<tr id="item-') == 1 and 'id="item-HON-1"' in sold


def test_feed_health_and_secret_rotation_shown_once(live, staff):
    client, csrf = signed_in(live, staff, "root")
    page = client.get("/studio/alpha/inventory").text
    assert "Rotate the webhook secret" in page and "no secret" in page
    r = client.post("/api/v1/inventory/alpha/secret", headers={"X-CSRF-Token": csrf})
    secret = r.json()["secret"]
    page = client.get("/studio/alpha/inventory").text
    assert "secret set" in page and secret not in page
    carol, carol_csrf = signed_in(live, staff, "carol")
    assert carol.post("/api/v1/inventory/alpha/secret",
                      headers={"X-CSRF-Token": carol_csrf}).status_code == 403
