"""Inventory truth on PostgreSQL (a throwaway database per run): migration 0004 applies,
concurrent signed batches for one market serialise, held changes and the audit chain hold."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from holobazaar.audit import service as audit
from holobazaar.db import session_scope

from .conftest import MARKET, display_state, get, start_inventory_server
from support.databases import throwaway_postgres

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_url() -> Iterator[str]:
    with throwaway_postgres("inventory") as url:
        yield url

def test_concurrent_batches_and_holds_on_postgres(pg_url: str, tmp_path: Path) -> None:
    live, feed = start_inventory_server(tmp_path, database_url=pg_url)
    try:
        errors: list[BaseException] = []

        def pusher(n: int) -> None:
            try:
                for i in range(5):
                    version = n * 100 + i + 1
                    feed.push({"sku": "TOM-BRANDY", "stock": version,
                               "source_version": version})
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=pusher, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not errors
        # The highest version wins whatever order the batches committed in.
        assert display_state(live, "zonneveld-greens")["items"]["TOM-BRANDY"]["stock"] == 305
        feed.push({"sku": "CAR-NANTES", "price": "28.00"})
        held = get(live, f"/api/v1/reconcile/{MARKET}/held").json()
        assert [h["sku"] for h in held] == ["CAR-NANTES"]
        with session_scope(live.app.state.services.engine) as session:
            assert audit.verify(session) == []
    finally:
        live.stop()
