"""Signed feed requests cannot be replayed (issue #28, finding 1): the v2 signature covers
the Idempotency-Key, and every signature is remembered in the database until its timestamp
leaves the window, so a captured request re-sent with a new key is refused on every node
that shares the database - also in the old (v1) form, accepted during its grace period."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from holobazaar.db import make_engine
from holobazaar.inventory import replay
from holobazaar.inventory.feeds import sign, sign_v1

from .conftest import MARKET, Feed, display_state, start_inventory_server
from support.databases import throwaway_postgres
from support.live import LiveServer, start_server
from support.waiting import wait_for

ZONNEVELD = "zonneveld-greens"
EVENTS = f"/api/v1/inventory/{MARKET}/events"


@contextmanager
def two_nodes(tmp: Path, database_url: str) -> Iterator[tuple[LiveServer, LiveServer, Feed]]:
    """Two app instances (two uvicorn servers, two engines) on one database."""
    first, feed = start_inventory_server(tmp / "a", database_url=database_url)
    try:
        second = start_server(tmp / "b", database_url=database_url, watch=False,
                              reconcile_interval=0.2, content_dir=first.content_dir)
        try:
            yield first, second, feed
        finally:
            second.stop()
    finally:
        first.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def nodes(request, tmp_path: Path) -> Iterator[tuple[LiveServer, LiveServer, Feed]]:
    if request.param == "sqlite":
        with two_nodes(tmp_path, f"sqlite:///{tmp_path / 'shared.db'}") as found:
            yield found
    else:
        with throwaway_postgres("replay") as url, two_nodes(tmp_path, url) as found:
            yield found


def send(live: LiveServer, body: bytes, headers: dict) -> httpx.Response:
    with live.client() as client:
        return client.post(EVENTS, content=body,
                           headers={**headers, "Content-Type": "application/json"})


def price(live: LiveServer, sku: str) -> str:
    return display_state(live, ZONNEVELD)["items"][sku]["price"]


def metric(live: LiveServer, form: str, outcome: str) -> float:
    with live.client() as client:
        text = client.get("/metrics").text
    name = f'holobazaar_inventory_feed_signatures_total{{form="{form}",outcome="{outcome}"}}'
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def test_a_captured_v1_request_replayed_with_a_new_key_is_refused_on_both_nodes(nodes):
    """The attack as found: a request in the form senders used before (sha256=, the key not
    signed) captured and re-sent byte for byte with a fresh Idempotency-Key."""
    a, b, feed = nodes
    body = json.dumps({"events": [{"sku": "CAR-NANTES", "price": "2.70"}]}).encode()
    ts = str(int(time.time()))
    captured = {"X-Holobazaar-Timestamp": ts, "X-Holobazaar-Signature": sign_v1(
        feed.secret, ts, body), "Idempotency-Key": "pos-1001"}
    first = send(a, body, captured)
    assert first.status_code == 200, first.text
    assert first.json()["applied"] == 1
    assert first.headers["Deprecation"] == "true" and "GMT" in first.headers["Sunset"]
    feed.push({"sku": "CAR-NANTES", "price": "2.90"})  # the stock system moves on
    for node in (b, a):
        replayed = send(node, body, {**captured, "Idempotency-Key": uuid.uuid4().hex})
        assert replayed.status_code == 401, replayed.text
        assert "already used" in replayed.json()["reason"]
    # The feed's new price reaches both nodes (the reconciler's pass), and no replay undid it.
    wait_for(lambda: price(a, "CAR-NANTES") == price(b, "CAR-NANTES") == "2.90", timeout=10)
    # The sender's own retry (same key) is answered from the stored batch, on any node.
    retry = send(b, body, captured)
    assert retry.status_code == 200 and retry.headers["Idempotent-Replayed"] == "true"
    assert retry.json() == first.json()
    assert price(b, "CAR-NANTES") == "2.90"
    assert metric(b, "v1", "replayed") >= 1
    assert metric(a, "v1", "accepted") >= 1


def test_a_v2_signature_covers_the_key_and_is_used_once(nodes):
    a, b, feed = nodes
    body = json.dumps({"events": [{"sku": "CAR-NANTES", "price": "2.70"}]}).encode()
    ts, key = str(int(time.time())), "pos-2002"
    captured = {"X-Holobazaar-Timestamp": ts, "Idempotency-Key": key,
                "X-Holobazaar-Signature": sign(feed.secret, ts, key, body)}
    first = send(a, body, captured)
    assert first.status_code == 200, first.text
    assert "Deprecation" not in first.headers
    feed.push({"sku": "CAR-NANTES", "price": "2.90"})
    replayed = send(b, body, {**captured, "Idempotency-Key": "pos-2003"})
    assert replayed.status_code == 401
    assert replayed.json()["reason"] == "signature does not match the request"
    retry = send(b, body, captured)
    assert retry.status_code == 200 and retry.headers["Idempotent-Replayed"] == "true"
    # b learns of a's batch at its next sweep (no broker here: the nodes share only the
    # database), and no replay undid it.
    wait_for(lambda: price(a, "CAR-NANTES") == price(b, "CAR-NANTES") == "2.90", timeout=10)
    assert metric(a, "v2", "accepted") >= 1


def test_the_old_form_is_refused_once_its_grace_period_is_over(tmp_path: Path):
    live, feed = start_inventory_server(tmp_path, inventory_v1_grace_days=0)
    try:
        body = json.dumps({"events": [{"sku": "CAR-NANTES", "price": "2.70"}]}).encode()
        ts = str(int(time.time()))
        response = send(live, body, {"X-Holobazaar-Timestamp": ts, "Idempotency-Key": "k1",
                                     "X-Holobazaar-Signature": sign_v1(feed.secret, ts, body)})
        assert response.status_code == 401
        assert "old signing form" in response.json()["reason"]
        assert "sign v2" in response.json()["reason"]
        assert metric(live, "v1", "refused") == 1
        assert feed.post(body).status_code == 200  # v2 goes through
        assert price(live, "CAR-NANTES") == "2.70"
    finally:
        live.stop()


def test_malformed_headers_get_400_naming_the_header(inv):
    live, feed = inv
    body = json.dumps({"events": [{"sku": "CAR-NANTES", "price": "2.70"}]}).encode()
    # "²".isdigit() is True but int("²") fails: it used to answer 500.
    for ts in ("²".encode("latin-1"), b"yesterday", b"17e8", b"-1", b"1" * 13):
        response = send(live, body, {"X-Holobazaar-Timestamp": ts, "Idempotency-Key": "k",
                                     "X-Holobazaar-Signature": "v2=" + "0" * 64})
        assert response.status_code == 400, (ts, response.text)
        assert "X-Holobazaar-Timestamp must be Unix seconds" in response.json()["detail"]
    ts = str(int(time.time()))
    unkeyed = send(live, body, {"X-Holobazaar-Timestamp": ts,
                                "X-Holobazaar-Signature": sign(feed.secret, ts, "", body)})
    assert unkeyed.status_code == 400
    assert "Idempotency-Key header required" in unkeyed.json()["detail"]
    assert price(live, "CAR-NANTES") == "2.80"


def test_expired_signatures_are_purged(tmp_path: Path):
    live, _ = start_inventory_server(tmp_path)
    live.stop()  # the migrated database is all this needs
    engine = make_engine(live.settings.resolved_database_url)
    try:
        now = int(time.time())
        assert replay.remember(engine, MARKET, "a" * 64, "v2", "k1", now - 1)
        assert replay.remember(engine, MARKET, "b" * 64, "v2", "k2", now + 600)
        assert replay.remember(engine, MARKET, "b" * 64, "v2", "k2", now + 600)  # a retry
        assert not replay.remember(engine, MARKET, "b" * 64, "v1", "k3", now + 600)
        assert replay.purge(engine, now) == 1
        assert replay.remember(engine, MARKET, "a" * 64, "v2", "k4", now + 600)
        guard = replay.ReplayGuard(engine, 300, 30)
        assert guard.v1_accepted()  # within 30 days of the migration
        assert guard.expires(now) > now + 300
    finally:
        engine.dispose()
