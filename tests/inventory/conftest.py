"""Inventory fixtures: a real server with a fast reconciler sweep and a webhook secret for
the demo market, and a helper that signs and pushes batches like a stock system would."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from holobazaar.inventory.feed_routes import new_secret
from holobazaar.inventory.feeds import sign

from support.live import LiveServer, start_server

MARKET = "greenhaven"


class Feed:
    def __init__(self, live: LiveServer, secret: str) -> None:
        self.live = live
        self.secret = secret

    def post(self, body: bytes, *, key: str | None = None, timestamp: str | None = None,
             secret: str | None = None, signature: str | None = None,
             market: str = MARKET) -> httpx.Response:
        ts = timestamp if timestamp is not None else str(int(time.time()))
        key = key or uuid.uuid4().hex
        headers = {"X-Holobazaar-Timestamp": ts, "Idempotency-Key": key,
                   "X-Holobazaar-Signature": signature or sign(secret or self.secret, ts, key,
                                                               body),
                   "Content-Type": "application/json"}
        with self.live.client() as client:
            return client.post(f"/api/v1/inventory/{market}/events", content=body,
                               headers=headers)

    def push(self, *events: dict, key: str | None = None) -> dict:
        response = self.post(json.dumps({"events": list(events)}).encode(), key=key)
        assert response.status_code == 200, response.text
        return response.json()


def start_inventory_server(tmp: Path, **overrides) -> tuple[LiveServer, Feed]:
    settings = {"reconcile_interval": 0.2, "watch": False, **overrides}
    live = start_server(tmp, **settings)
    secret = new_secret(live.app.state.services.engine, MARKET, "tests")  # type: ignore[attr-defined]
    live.call(_reload_feed, live, MARKET)
    return live, Feed(live, secret)


async def _reload_feed(live: LiveServer, market: str) -> None:
    live.app.state.services.reconciler._reload_feed(market)  # type: ignore[attr-defined]


@pytest.fixture
def inv(tmp_path: Path) -> Iterator[tuple[LiveServer, Feed]]:
    live, feed = start_inventory_server(tmp_path)
    yield live, feed
    live.stop()


def display_state(live: LiveServer, display: str) -> dict:
    with live.client() as client:
        response = client.get(f"/api/v1/displays/{MARKET}/{display}/state")
        assert response.status_code == 200, response.text
        return response.json()["state"]


def get(live: LiveServer, path: str) -> httpx.Response:
    with live.client() as client:
        return client.get(path, headers=live.write_headers)


def post(live: LiveServer, path: str, body: dict | None = None) -> httpx.Response:
    with live.client() as client:
        return client.post(path, json=body, headers=live.write_headers)
