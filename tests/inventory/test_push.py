"""The signed push feed: authentication, idempotency, ordering, per-row validation, and
changes reaching real WebSocket clients as patches."""

from __future__ import annotations

import asyncio
import json
import time

from sqlmodel import select

from holobazaar.audit.models import AuditEntry
from holobazaar.db import session_scope
from holobazaar.inventory.models import InventoryItem
from holobazaar.inventory.tables import FeedBatch, ItemHistory

from .conftest import MARKET, display_state, get
from support.streamclient import StreamClient

ZONNEVELD = "zonneveld-greens"


def _count(live, model) -> int:
    with session_scope(live.app.state.services.engine) as session:
        return len(session.exec(select(model)).all())


def test_bad_signatures_are_refused_and_nothing_is_stored(inv) -> None:
    live, feed = inv
    body = json.dumps({"events": [{"sku": "TOM-BRANDY", "price": "6.10"}]}).encode()
    batches = _count(live, FeedBatch)
    cases = [
        (feed.post(body, signature="sha256=" + "0" * 64), "signature does not match"),
        (feed.post(body, secret="wrong"), "signature does not match"),
        (feed.post(body, timestamp=str(int(time.time()) - 3600)), "replay window"),
        (feed.post(body, signature="md5=abc"), "v2=<64 hex digits>"),
    ]
    for response, reason in cases:
        assert response.status_code == 401, response.text
        assert response.json()["detail"] == "authentication required"
        assert reason in response.json()["reason"]
    with live.client() as client:
        missing = client.post(f"/api/v1/inventory/{MARKET}/events", content=body)
    assert missing.status_code == 401
    assert "missing X-Holobazaar-Signature" in missing.json()["reason"]
    assert _count(live, FeedBatch) == batches
    assert display_state(live, ZONNEVELD)["items"]["TOM-BRANDY"]["price"] == "6.50"


def test_idempotency_key_replay_and_conflict(inv) -> None:
    live, feed = inv
    body = json.dumps({"events": [{"sku": "TOM-BRANDY", "price": "6.10"}]}).encode()
    first = feed.post(body, key="batch-1")
    assert first.status_code == 200 and first.json()["applied"] == 1
    again = feed.post(body, key="batch-1")
    assert again.status_code == 200
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    other = json.dumps({"events": [{"sku": "TOM-BRANDY", "price": "9.10"}]}).encode()
    conflict = feed.post(other, key="batch-1")
    assert conflict.status_code == 409
    assert "different body" in conflict.json()["detail"]
    assert display_state(live, ZONNEVELD)["items"]["TOM-BRANDY"]["price"] == "6.10"
    assert _count(live, FeedBatch) == 1


def test_older_events_never_regress_an_item(inv) -> None:
    live, feed = inv
    feed.push({"sku": "CAR-NANTES", "price": "2.90", "source_version": 10})
    result = feed.push({"sku": "CAR-NANTES", "price": "2.10", "source_version": 9},
                       {"sku": "CAR-NANTES", "price": "2.20", "source_version": 10})
    assert result["ignored"] == 2 and result["applied"] == 0
    assert display_state(live, ZONNEVELD)["items"]["CAR-NANTES"]["price"] == "2.90"
    feed.push({"sku": "CAR-NANTES", "price": "3.00", "source_version": 11})
    assert display_state(live, ZONNEVELD)["items"]["CAR-NANTES"]["price"] == "3.00"
    with session_scope(live.app.state.services.engine) as session:
        row = session.get(InventoryItem, (MARKET, "CAR-NANTES"))
        assert row.source_version == 11
        history = session.exec(select(ItemHistory).where(ItemHistory.sku == "CAR-NANTES")).all()
    assert [json.loads(h.data)["price"] for h in history] == ["2.90", "3.00"]


def test_bad_rows_are_reported_by_line_and_good_rows_apply(inv) -> None:
    live, feed = inv
    body = (b'{"events": [{"sku": "KAL-NERO", "price": "3.30"},'
            b' {"sku": "LET-BUTTER", "price": NaN},'
            b' {"sku": "LET-BUTTER", "price": "-1"},'
            b' {"sku": "LET-BUTTER", "price": "2.00", "currency": "XYZ"},'
            b' {"sku": "LET-BUTTER", "stock": 99999999999},'
            b' {"sku": "NEW-ITEM"},'
            b' {"sku": "bad sku!"},'
            b' "not an object",'
            b' {"sku": "PUM-POTIMARRON", "price": 4.1}]}')
    response = feed.post(body)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["applied"] == 2
    lines = {r["line"]: r for r in result["rejected"]}
    assert sorted(lines) == [2, 3, 4, 5, 6, 7, 8]
    assert "finite" in lines[2]["error"] or "NaN" in lines[2]["error"]
    assert "greater than or equal to 0" in lines[3]["error"]
    assert "ISO 4217" in lines[4]["error"]
    assert "stock" in lines[5]["error"]
    assert "name and price" in lines[6]["error"]
    items = display_state(live, ZONNEVELD)["items"]
    assert items["KAL-NERO"]["price"] == "3.30"
    assert items["PUM-POTIMARRON"]["price"] == "4.10"  # a JSON number, read as a decimal
    assert items["LET-BUTTER"]["price"] == "1.90"


def test_unreadable_body_is_refused_whole(inv) -> None:
    live, feed = inv
    for body, reason in [(b"{not json", "not JSON"), (b'{"rows": []}', "unknown top-level"),
                         (b'"x"', "expected")]:
        response = feed.post(body)
        assert response.status_code == 400 and reason in response.json()["detail"]
    assert _count(live, FeedBatch) == 0


def test_push_reaches_clients_as_patches_and_is_audited(inv) -> None:
    live, feed = inv
    channel = f"market/{MARKET}/display/{ZONNEVELD}"

    async def scenario() -> dict:
        client = StreamClient(live.ws_url)
        await client.connect()
        await client.hello(channel)
        await client.next("snapshot")
        result = feed_push()
        patch = await client.next("patch")
        view = client.views[channel]
        await client.close()
        assert not client.violations
        return {"result": result, "patch": patch, "state": view.state}

    def feed_push() -> dict:
        return feed.push({"sku": "TOM-CHEROKEE", "price": "7.00", "stock": 0},
                         {"op": "remove", "sku": "HON-HEATHER"},
                         {"sku": "NEW-SQUASH", "name": "Squash", "price": "3.00",
                          "unit": "each", "currency": "eur"})

    out = asyncio.run(_in_thread(scenario))
    assert out["result"]["applied"] == 2 and out["result"]["removed"] == 1
    item = out["state"]["items"]["TOM-CHEROKEE"]
    assert (item["price"], item["status"], item["stock"]) == ("7.00", "sold_out", 0)
    with session_scope(live.app.state.services.engine) as session:
        entry = session.exec(select(AuditEntry).where(
            AuditEntry.action == "inventory.batch")).one()
        assert json.loads(entry.detail)["removed"] == ["HON-HEATHER"]
        assert session.get(InventoryItem, (MARKET, "HON-HEATHER")) is None
    history = get(live, f"/api/v1/inventory/{MARKET}/items/NEW-SQUASH/history").json()
    assert history[0]["op"] == "upsert"


async def _in_thread(scenario):
    return await scenario()
