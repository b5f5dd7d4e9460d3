"""A curator's manual change follows the feed's hold policy: a price moving more than
HOLOBAZAAR_HOLD_PRICE_CHANGE percent needs `"confirm": true` (409 naming the change
without it), and in a `four_eyes` market a second curator's approval; nothing reaches a
display before that, and every step is in the audit chain with who did it.

Real server on a loopback port, real WebSocket client, the demo market."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from sqlmodel import col, select

from holobazaar.accounts import service as accounts
from holobazaar.audit import service as audit
from holobazaar.audit.models import AuditEntry
from holobazaar.db import session_scope
from holobazaar.inventory.feed_routes import new_secret

from .conftest import MARKET, display_state, get, post
from support.content import copy_content
from support.databases import throwaway_postgres
from support.live import LiveServer, start_server
from support.streamclient import StreamClient

DISPLAY = "zonneveld-greens"
CHANNEL = f"market/{MARKET}/display/{DISPLAY}"


def item_url(sku: str) -> str:
    return f"/api/v1/markets/{MARKET}/items/{sku}"


def curator(live: LiveServer, name: str) -> dict[str, str]:
    token, _ = accounts.create_token(live.app.state.services.engine, name,  # type: ignore[attr-defined]
                                     ["curator"], [MARKET], None, actor="tests")
    return {"Authorization": f"Bearer {token}"}


def patch(live: LiveServer, sku: str, body: dict, headers: dict | None = None
          ) -> httpx.Response:
    with live.client() as client:
        return client.patch(item_url(sku), json=body, headers=headers or live.write_headers)


def stored(live: LiveServer, sku: str) -> dict:
    with live.client() as client:
        return next(i for i in client.get(f"/api/v1/markets/{MARKET}/items").json()
                    if i["sku"] == sku)


def shown(live: LiveServer, sku: str) -> dict:
    return display_state(live, DISPLAY)["items"][sku]


def entries(live: LiveServer, *prefixes: str) -> list[tuple[str, str, dict]]:
    """Audit entries whose action starts with one of `prefixes`, oldest first."""
    with session_scope(live.app.state.services.engine) as session:  # type: ignore[attr-defined]
        rows = session.exec(select(AuditEntry).order_by(col(AuditEntry.id)))
        return [(e.action, e.actor, json.loads(e.detail)) for e in rows
                if e.action.startswith(prefixes)]


STEPS = ("inventory.manual.", "inventory.held.")


def chain_problems(live: LiveServer) -> list[str]:
    with session_scope(live.app.state.services.engine) as session:  # type: ignore[attr-defined]
        return audit.verify(session)


class Watcher:
    """A WebSocket client on the display's channel, on the server's loop."""

    def __init__(self, live: LiveServer) -> None:
        self.live = live
        self.client = StreamClient(live.ws_url)
        self.start = live.call(self._connect)

    async def _connect(self) -> int:
        await self.client.connect()
        await self.client.hello(CHANNEL)
        await self.client.next("snapshot")
        return self.client.views[CHANNEL].offset

    def offset(self) -> int:
        return self.client.views[CHANNEL].offset

    def price_after(self, offset: int, sku: str) -> tuple[int, str | None]:
        """The offset and the item's price once the channel moved past `offset`."""
        async def wait() -> tuple[int, str | None]:
            view = await self.client.wait_offset(CHANNEL, offset + 1)
            return view.offset, view.state["items"][sku]["price"]
        return self.live.call(wait)

    def quiet(self, seconds: float = 0.5) -> list[dict]:
        """State frames (snapshot, patch) that arrive within `seconds`."""
        frames = self.live.call(self.client.quiet, seconds)
        return [f for f in frames if f["type"] in ("snapshot", "patch")]

    def close(self) -> None:
        self.live.call(self.client.close)


def _server(tmp: Path, four_eyes: bool = False, **settings) -> LiveServer:
    content = tmp / "content"
    if not content.exists():
        copy_content(content)
        if four_eyes:
            market_file = content / "scenes" / MARKET / "market.yaml"
            market_file.write_text(market_file.read_text() + "\nfour_eyes: true\n")
    live = start_server(tmp, content_dir=content, watch=False, reconcile_interval=0.2,
                        **settings)
    if four_eyes:  # with a feed, so a reload of the truth from the database runs in full
        new_secret(live.app.state.services.engine, MARKET, "tests")  # type: ignore[attr-defined]
        live.call(live.app.state.services.reconciler.reload_feed, MARKET)  # type: ignore[attr-defined]
    return live


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    server = _server(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def four_eyes(tmp_path: Path) -> Iterator[LiveServer]:
    server = _server(tmp_path, four_eyes=True)
    yield server
    server.stop()


def test_a_small_change_applies_at_once_and_is_audited(live) -> None:
    response = patch(live, "TOM-BRANDY", {"price": "7.00"})  # +7.7%
    assert response.status_code == 200, response.text
    assert response.json()["price"] == "7.00" and shown(live, "TOM-BRANDY")["price"] == "7.00"
    [(action, actor, detail)] = entries(live, "inventory.manual.")
    assert (action, actor) == ("inventory.manual.applied", "token:tests admin")
    assert Decimal(detail["old"]["price"]) == Decimal("6.50")
    assert Decimal(detail["new"]["price"]) == Decimal("7.00")
    assert detail["price_check"] is None


def test_a_big_change_needs_confirm_and_nothing_moves_without_it(live) -> None:
    watcher = Watcher(live)
    try:
        before = watcher.offset()
        refused = patch(live, "TOM-BRANDY", {"price": "18.98", "stock": 3})  # +192%
        assert refused.status_code == 409, refused.text
        body = refused.json()
        assert body["code"] == "confirmation_required" and body["four_eyes"] is False
        assert body["change"] == {"sku": "TOM-BRANDY", "field": "price", "old": "6.50",
                                  "new": "18.98", "currency": "EUR", "percent": 192.0,
                                  "threshold": 50.0}
        assert '"confirm": true' in body["detail"] and "+192.00%" in body["detail"]
        # Nothing changed: not the price, not the stock sent along, not a display, no audit.
        assert stored(live, "TOM-BRANDY")["price"] == "6.50"
        assert stored(live, "TOM-BRANDY")["stock"] == 18
        assert shown(live, "TOM-BRANDY")["price"] == "6.50"
        assert entries(live, "inventory.manual.") == []
        assert watcher.quiet() == []
        # Not a boolean: refused, not taken as a confirmation.
        assert patch(live, "TOM-BRANDY", {"price": "18.98", "confirm": "yes"}
                     ).status_code == 422
        assert patch(live, "TOM-BRANDY", {"price": "18.98", "confirm": 1}).status_code == 422

        confirmed = patch(live, "TOM-BRANDY", {"price": "61.30", "confirm": True})  # +843%
        assert confirmed.status_code == 200, confirmed.text
        assert confirmed.json()["price"] == "61.30"
        # The first patch the client gets is the confirmed change: the refused one sent none.
        assert watcher.price_after(before, "TOM-BRANDY") == (before + 1, "61.30")
    finally:
        watcher.close()
    [(action, actor, detail)] = entries(live, "inventory.manual.")
    assert (action, actor) == ("inventory.manual.confirmed", "token:tests admin")
    assert detail["price_check"]["percent"] == 843.08
    assert Decimal(detail["old"]["price"]) == Decimal("6.50")
    assert Decimal(detail["new"]["price"]) == Decimal("61.30")
    # A stock change alone is never held (the feed holds none either).
    assert patch(live, "TOM-BRANDY", {"stock": 0, "status": "sold_out"}).status_code == 200
    assert chain_problems(live) == []


def test_the_threshold_is_the_feeds_setting(tmp_path: Path) -> None:
    server = _server(tmp_path, hold_price_change=200.0)
    try:
        assert patch(server, "TOM-BRANDY", {"price": "18.98"}).status_code == 200  # +192%
        refused = patch(server, "CAR-NANTES", {"price": "9.00"})  # +221%
        assert refused.status_code == 409 and refused.json()["change"]["threshold"] == 200.0
    finally:
        server.stop()


def test_four_eyes_a_confirmed_change_waits_for_a_second_curator(four_eyes) -> None:
    live = four_eyes
    alice, bob = curator(live, "alice"), curator(live, "bob")
    watcher = Watcher(live)
    try:
        before = watcher.offset()
        unconfirmed = patch(live, "TOM-BRANDY", {"price": "18.98"}, alice)
        assert unconfirmed.status_code == 409 and unconfirmed.json()["four_eyes"] is True
        assert "second curator" in unconfirmed.json()["detail"]

        requested = patch(live, "TOM-BRANDY", {"price": "18.98", "confirm": True}, alice)
        assert requested.status_code == 202, requested.text
        pending = requested.json()
        held_id = pending["held"]
        assert pending["status"] == "pending" and pending["requested_by"] == "token:alice"
        assert pending["change"]["percent"] == 192.0 and pending["item"]["price"] == "6.50"
        assert pending["approve"] == f"/api/v1/reconcile/{MARKET}/held/{held_id}/approve"
        # Nothing visible changed: the stored price stands, no notice, no patch sent.
        assert stored(live, "TOM-BRANDY")["price"] == "6.50"
        item = shown(live, "TOM-BRANDY")
        assert item["price"] == "6.50" and "notice" not in item
        assert watcher.quiet() == []
        [held] = get(live, f"/api/v1/reconcile/{MARKET}/held").json()
        assert (held["id"], held["reason"], held["requested_by"]) == (
            held_id, "four_eyes", "token:alice")
        # A reload of the truth from the database (another node's change) masks nothing.
        live.call(live.app.state.services.reconciler.resync, MARKET)  # type: ignore[attr-defined]
        assert "notice" not in shown(live, "TOM-BRANDY")

        with live.client() as client:
            own = client.post(pending["approve"], headers=alice)
        assert own.status_code == 403, own.text
        assert "another curator" in own.json()["detail"]
        assert stored(live, "TOM-BRANDY")["price"] == "6.50"
        assert watcher.quiet() == []

        with live.client() as client:
            approved = client.post(pending["approve"], headers=bob)
        assert approved.status_code == 200, approved.text
        assert watcher.price_after(before, "TOM-BRANDY") == (before + 1, "18.98")
        assert stored(live, "TOM-BRANDY")["price"] == "18.98"
        assert get(live, f"/api/v1/reconcile/{MARKET}/held").json() == []
    finally:
        watcher.close()
    steps = [(a, actor, d.get("held"), d.get("requested_by"))
             for a, actor, d in entries(live, *STEPS)]
    assert steps == [("inventory.manual.requested", "token:alice", held_id, None),
                     ("inventory.held.approved", "token:bob", held_id, "token:alice")]
    assert chain_problems(live) == []


def test_four_eyes_reject_and_admins_are_held_to_it_too(four_eyes) -> None:
    live = four_eyes
    alice = curator(live, "alice")
    # An admin's own request: the admin cannot approve it either.
    mine = patch(live, "CAR-NANTES", {"price": "0.10", "confirm": True})  # -96%
    assert mine.status_code == 202, mine.text
    assert post(live, mine.json()["approve"]).status_code == 403
    # A second request for the same item replaces the first.
    again = patch(live, "CAR-NANTES", {"price": "0.20", "confirm": True})
    assert again.status_code == 202 and again.json()["superseded"] == [mine.json()["held"]]
    assert post(live, mine.json()["approve"]).status_code == 404
    # Another curator rejects it: the old price stands.
    with live.client() as client:
        rejected = client.post(again.json()["reject"], headers=alice)
    assert rejected.status_code == 200, rejected.text
    assert stored(live, "CAR-NANTES")["price"] == "2.80"
    assert shown(live, "CAR-NANTES")["price"] == "2.80"
    assert post(live, again.json()["approve"]).status_code == 404  # decided
    # Small changes still apply at once in a four-eyes market.
    assert patch(live, "CAR-NANTES", {"price": "3.00"}).status_code == 200
    steps = [(a, actor) for a, actor, _ in entries(live, *STEPS)]
    assert steps == [("inventory.manual.requested", "token:tests admin"),
                     ("inventory.manual.requested", "token:tests admin"),
                     ("inventory.held.rejected", "token:alice"),
                     ("inventory.manual.applied", "token:tests admin")]
    assert chain_problems(live) == []


def test_four_eyes_approval_applies_the_change_to_the_item_as_it_is_then(four_eyes) -> None:
    live = four_eyes
    alice = curator(live, "alice")
    pending = patch(live, "KAL-NERO", {"price": "9.90", "confirm": True}).json()
    # Meanwhile the stock moves (a small change applies at once).
    assert patch(live, "KAL-NERO", {"stock": 5}, alice).status_code == 200
    with live.client() as client:
        assert client.post(pending["approve"], headers=alice).status_code == 200
    item = stored(live, "KAL-NERO")
    assert (item["price"], item["stock"]) == ("9.90", 5)


def test_a_pending_change_survives_a_restart_and_masks_nothing(tmp_path: Path) -> None:
    live = _server(tmp_path, four_eyes=True)
    try:
        pending = patch(live, "TOM-BRANDY", {"price": "18.98", "confirm": True}).json()
    finally:
        live.stop()
    live = _server(tmp_path, four_eyes=True)
    try:
        item = shown(live, "TOM-BRANDY")
        assert item["price"] == "6.50" and "notice" not in item
        with live.client() as client:
            approved = client.post(pending["approve"], headers=curator(live, "bob"))
        assert approved.status_code == 200, approved.text
        assert shown(live, "TOM-BRANDY")["price"] == "18.98"
    finally:
        live.stop()


def test_the_market_file_takes_four_eyes_as_a_boolean_only(tmp_path: Path) -> None:
    from holobazaar.content import load_content

    content = copy_content(tmp_path / "content")
    market_file = content / "scenes" / MARKET / "market.yaml"
    text = market_file.read_text()
    market_file.write_text(text + "\nfour_eyes: true\n")
    assert load_content(content).markets[MARKET].market.four_eyes is True
    market_file.write_text(text + "\nfour_eyes: maybe\n")
    broken = load_content(content)
    assert MARKET not in broken.markets
    assert any("four_eyes" in str(p) for p in broken.problems), broken.problems




def _migrate_0012(url: str) -> None:
    from alembic import command
    from sqlalchemy import inspect, text

    from holobazaar import db

    db.upgrade(url, "0011")
    engine = db.make_engine(url)
    with engine.begin() as conn:  # a feed hold made before 0012 keeps its row
        conn.execute(text(
            "INSERT INTO inventory_held (market, sku, reason, new, created_at) "
            "VALUES ('m', 'A', 'price_change', '{}', CURRENT_TIMESTAMP)"))
    db.upgrade(url, "0012")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT sku, requested_by FROM inventory_held")).one() == (
            "A", None)
    command.downgrade(db.alembic_config(url), "0011")
    engine.dispose()
    engine = db.make_engine(url)
    columns = {c["name"] for c in inspect(engine).get_columns("inventory_held")}
    assert "requested_by" not in columns and "reason" in columns
    db.upgrade(url, "0012")
    engine.dispose()


def test_migration_0012_on_sqlite(tmp_path: Path) -> None:
    _migrate_0012(f"sqlite:///{tmp_path / 'm.db'}")


@pytest.mark.postgres
def test_migration_0012_on_postgresql() -> None:
    with throwaway_postgres("manual0012") as url:
        _migrate_0012(url)


@pytest.mark.postgres
def test_four_eyes_on_postgresql(tmp_path: Path) -> None:
    with throwaway_postgres("manual") as url:
        live = _server(tmp_path, four_eyes=True, database_url=url)
        try:
            alice, bob = curator(live, "alice"), curator(live, "bob")
            assert patch(live, "TOM-BRANDY", {"price": "18.98"}, alice).status_code == 409
            pending = patch(live, "TOM-BRANDY", {"price": "18.98", "confirm": True}, alice)
            assert pending.status_code == 202, pending.text
            with live.client() as client:
                assert client.post(pending.json()["approve"], headers=alice).status_code == 403
                assert shown(live, "TOM-BRANDY")["price"] == "6.50"
                assert client.post(pending.json()["approve"], headers=bob).status_code == 200
            assert shown(live, "TOM-BRANDY")["price"] == "18.98"
            assert chain_problems(live) == []
        finally:
            live.stop()
