"""Fixtures of the verifiable price history: a real server (uvicorn on a loopback port) and
a helper that applies feed batches through the inventory truth, as a feed would."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from holobazaar.inventory import batches
from holobazaar.inventory.feeds import FeedEvent

from support.live import LiveServer, start_server

MARKET = "greenhaven"


def apply(live: LiveServer, *events: dict, source: str = "push") -> dict:
    """One feed batch, applied and audited the way the webhook applies it."""
    body = json.dumps(list(events)).encode()
    rows = [(n, FeedEvent(**e)) for n, e in enumerate(events, 1)]
    result = batches.apply_batch(live.app.state.services.engine, MARKET, rows,  # type: ignore[attr-defined]
                               source=source, body_digest=hashlib.sha256(body).hexdigest(),
                               key=None, policy=batches.Policy(hold_price_change=1000),
                               currency="EUR")
    return result.response


def get(live: LiveServer, path: str, **params) -> httpx.Response:
    with live.client() as client:
        return client.get(path, params=params)


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    server = start_server(tmp_path, watch=False)
    yield server
    server.stop()
