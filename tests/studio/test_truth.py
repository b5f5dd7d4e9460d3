"""The studio's holds and mismatches page: held feed and four-eyes changes with old -> new
and their source, decisions with a reason (in the audit trail and the recent decisions),
mismatches by kind with their time to correct, the drill (admins), audit verification and
export, the live part, and 403 for another market."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from studio.inventory_content import configure_feed, push, start

from support.accounts import Accounts, csrf_from
from support.live import LiveServer


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    server = start(tmp_path, reconcile_interval=0.2)
    yield server
    server.stop()


@pytest.fixture
def staff(live: LiveServer) -> Accounts:
    accounts = Accounts(live)
    accounts.user("carol", ["curator"], ["alpha"])
    accounts.user("bea", ["curator"], ["beta"])
    accounts.user("pat", ["performer"], ["alpha"])
    accounts.user("root", ["admin"], [])
    return accounts


def signed_in(live, staff, name: str, market: str = "alpha"):
    client = live.client()
    staff.login(client, name)
    page = client.get(f"/studio/{market}/truth")
    assert page.status_code == 200, page.text
    return client, csrf_from(page.text)


def test_a_held_feed_change_is_shown_and_approved_with_a_reason(live, staff):
    secret = configure_feed(live)
    result = push(live, secret, {"sku": "APL-1", "price": "9.99"})  # +300%: held
    assert result["held"] == 1
    client, csrf = signed_in(live, staff, "carol")
    page = client.get("/studio/alpha/truth").text
    assert "Held changes <span class=\"count\">(1)</span>" in page
    assert "2.50 EUR / kg" in page and "9.99 EUR / kg" in page
    assert "large price change" in page and "feed (webhook), batch #" in page
    held = client.get("/api/v1/reconcile/alpha/held").json()[0]["id"]
    r = client.post(f"/api/v1/reconcile/alpha/held/{held}/approve",
                    headers={"X-CSRF-Token": csrf}, json={"reason": "new season <b>price</b>"})
    assert r.status_code == 200
    page = client.get("/studio/alpha/truth?part=live").text
    assert "<html" not in page and "No held changes" in page
    assert "approved</strong> by carol" in page
    assert "new season &lt;b&gt;price&lt;/b&gt;" in page  # the reason, as text
    assert client.get("/api/v1/markets/alpha/items").json()[0]["price"] == "9.99"


def test_reject_keeps_the_old_value_and_the_reason_is_audited(live, staff):
    secret = configure_feed(live)
    push(live, secret, {"sku": "PEAR-1", "price": "0.10"})
    client, csrf = signed_in(live, staff, "carol")
    held = client.get("/api/v1/reconcile/alpha/held").json()[0]["id"]
    too_long = client.post(f"/api/v1/reconcile/alpha/held/{held}/reject",
                           headers={"X-CSRF-Token": csrf}, json={"reason": "x" * 501})
    assert too_long.status_code == 422
    r = client.post(f"/api/v1/reconcile/alpha/held/{held}/reject",
                    headers={"X-CSRF-Token": csrf}, json={"reason": "typo in the till"})
    assert r.status_code == 200
    items = {i["sku"]: i for i in client.get("/api/v1/markets/alpha/items").json()}
    assert items["PEAR-1"]["price"] == "3.00"
    export = client.get("/api/v1/markets/alpha/audit/export")
    assert export.status_code == 200 and "attachment" in export.headers["content-disposition"]
    entries = [json.loads(line) for line in export.text.splitlines()]
    assert {e["market"] for e in entries} == {"alpha"}
    rejected = [e for e in entries if e["action"] == "inventory.held.rejected"]
    assert rejected[0]["detail"]["reason"] == "typo in the till"


def test_four_eyes_request_names_the_curator_who_cannot_approve_it(tmp_path):
    live = start(tmp_path, four_eyes=True)
    try:
        staff = Accounts(live)
        staff.user("carol", ["curator"], ["alpha"])
        client, csrf = signed_in(live, staff, "carol")
        r = client.patch("/api/v1/markets/alpha/items/APL-1", headers={"X-CSRF-Token": csrf},
                         json={"price": "4.00", "confirm": True})
        assert r.status_code == 202
        page = client.get("/studio/alpha/truth").text
        assert "four eyes" in page and "carol (curator)" in page
        assert "You asked for this change: another curator approves it." in page
    finally:
        live.stop()


def test_mismatches_by_kind_with_time_to_correct_and_the_drill_for_admins(live, staff):
    client, csrf = signed_in(live, staff, "carol")
    page = client.get("/studio/alpha/truth").text
    assert "No open mismatches" in page and "Run the drill" not in page
    assert client.post("/api/v1/reconcile/alpha/drill", headers={"X-CSRF-Token": csrf},
                       json={}).status_code == 403
    admin, admin_csrf = signed_in(live, staff, "root")
    assert "Run the drill" in admin.get("/studio/alpha/truth").text
    r = admin.post("/api/v1/reconcile/alpha/drill", headers={"X-CSRF-Token": admin_csrf},
                   json={"seed": 1})
    assert r.status_code == 200 and r.json()["scrambled"]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        page = client.get("/studio/alpha/truth?part=live").text
        if "Recently corrected" in page and 'id="recent-mismatches"' in page:
            break
        time.sleep(0.2)
    assert 'id="recent-mismatches"' in page
    assert "Time to correct" in page and ("guarded" in page or "corrected" in page)


def test_audit_chain_verifies(live, staff):
    client, _ = signed_in(live, staff, "carol")
    r = client.get("/api/v1/markets/alpha/audit/verify")
    assert r.status_code == 200 and r.json()["ok"] is True and r.json()["entries"] > 0
    with live.client() as anonymous:
        assert anonymous.get("/api/v1/markets/alpha/audit/verify").status_code == 401


def test_other_market_and_other_roles_get_403(live, staff):
    client, csrf = signed_in(live, staff, "bea", market="beta")
    assert client.get("/studio/alpha/truth").status_code == 403
    assert client.get("/studio/alpha/truth?part=live").status_code == 403
    assert client.get("/api/v1/markets/alpha/audit/export").status_code == 403
    assert client.post("/api/v1/reconcile/alpha/held/1/approve",
                       headers={"X-CSRF-Token": csrf}).status_code == 403
    with live.client() as performer:
        staff.login(performer, "pat")
        assert performer.get("/studio/alpha/truth").status_code == 403
