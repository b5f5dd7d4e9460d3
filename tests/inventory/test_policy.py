"""Held changes: a large price move and a batch that changes too much of the market are
held for a curator; meanwhile the display shows "price at the stall", never a price."""

from __future__ import annotations

import json

from sqlmodel import select

from holobazaar.audit.models import AuditEntry
from holobazaar.db import session_scope

from .conftest import MARKET, display_state, get, post

ZONNEVELD = "zonneveld-greens"


def _node_text(state: dict, node: str) -> str:
    return state["nodes"][node]["text"]


def test_big_price_move_is_held_then_approved(inv) -> None:
    live, feed = inv
    result = feed.push({"sku": "TOM-BRANDY", "price": "65.00"})  # 6.50 -> 65.00: x10
    assert result["held"] == 1 and result["applied"] == 0
    state = display_state(live, ZONNEVELD)
    item = state["items"]["TOM-BRANDY"]
    assert item["price"] is None and item["notice"] == "price at the stall"
    assert "price at the stall" in _node_text(state, "tomato-price")
    assert "6.50" not in _node_text(state, "tomato-price")
    held = get(live, f"/api/v1/reconcile/{MARKET}/held").json()
    assert [(h["sku"], h["reason"]) for h in held] == [("TOM-BRANDY", "price_change")]
    summary = get(live, f"/api/v1/reconcile/{MARKET}/summary").json()
    assert summary["held_changes"] == 1
    # The item API still tells the curator the confirmed truth.
    with live.client() as client:
        items = {i["sku"]: i for i in client.get(f"/api/v1/markets/{MARKET}/items").json()}
    assert items["TOM-BRANDY"]["price"] == "6.50"
    decided = post(live, f"/api/v1/reconcile/{MARKET}/held/{held[0]['id']}/approve")
    assert decided.status_code == 200, decided.text
    item = display_state(live, ZONNEVELD)["items"]["TOM-BRANDY"]
    assert item["price"] == "65.00" and "notice" not in item
    assert get(live, f"/api/v1/reconcile/{MARKET}/held").json() == []
    with session_scope(live.app.state.services.engine) as session:
        entry = session.exec(select(AuditEntry).where(
            AuditEntry.action == "inventory.held.approved")).one()
    assert json.loads(entry.detail)["sku"] == "TOM-BRANDY"
    assert entry.actor.startswith("token:") or entry.actor


def test_rejected_hold_keeps_the_old_price(inv) -> None:
    live, feed = inv
    feed.push({"sku": "CAR-NANTES", "price": "0.10"})
    held = get(live, f"/api/v1/reconcile/{MARKET}/held").json()
    assert post(live, f"/api/v1/reconcile/{MARKET}/held/{held[0]['id']}/reject"
                ).status_code == 200
    item = display_state(live, ZONNEVELD)["items"]["CAR-NANTES"]
    assert item["price"] == "2.80" and "notice" not in item
    again = post(live, f"/api/v1/reconcile/{MARKET}/held/{held[0]['id']}/approve")
    assert again.status_code == 404


def test_decisions_need_a_curator(inv) -> None:
    live, feed = inv
    feed.push({"sku": "CAR-NANTES", "price": "0.10"})
    with live.client() as client:
        assert client.post(f"/api/v1/reconcile/{MARKET}/held/1/approve").status_code == 401
        assert client.get(f"/api/v1/reconcile/{MARKET}/held").status_code == 401


def test_circuit_breaker_holds_a_whole_batch(inv) -> None:
    live, feed = inv
    with live.client() as client:
        skus = [i["sku"] for i in client.get(f"/api/v1/markets/{MARKET}/items").json()]
    # Every item of the market marked sold out in one batch: looks like a broken feed.
    result = feed.push(*[{"sku": sku, "stock": 0, "status": "sold_out"} for sku in skus])
    assert result["circuit_breaker"] is True
    assert result["applied"] == 0 and result["held"] + result["unchanged"] == len(skus)
    assert result["held"] > len(skus) // 2
    items = display_state(live, ZONNEVELD)["items"]
    assert items["TOM-BRANDY"]["status"] == "in_stock"
    assert items["TOM-BRANDY"]["notice"] == "price at the stall"
    decided = post(live, f"/api/v1/reconcile/{MARKET}/batches/{result['batch']}/approve")
    assert decided.status_code == 200, decided.text
    items = display_state(live, ZONNEVELD)["items"]
    assert items["TOM-BRANDY"]["status"] == "sold_out"
    assert "notice" not in items["TOM-BRANDY"]


def test_newer_event_supersedes_a_held_one(inv) -> None:
    live, feed = inv
    feed.push({"sku": "KAL-NERO", "price": "30.00", "source_version": 1})
    feed.push({"sku": "KAL-NERO", "price": "3.40", "source_version": 2})
    assert get(live, f"/api/v1/reconcile/{MARKET}/held").json() == []
    item = display_state(live, ZONNEVELD)["items"]["KAL-NERO"]
    assert item["price"] == "3.40" and "notice" not in item
