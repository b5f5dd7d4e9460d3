"""A curator's own inventory changes beyond editing one item: adding an item, retiring
one. Both are audited and enter the public price history in the same transaction."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.engine import Engine
from sqlmodel import col, select

from holobazaar import db
from holobazaar.audit import service as audit
from holobazaar.audit.public import PublicChange
from holobazaar.db import session_scope
from holobazaar.inventory import batches, service
from holobazaar.inventory.models import InventoryItem, ItemCreate
from holobazaar.inventory.tables import HeldChange
from holobazaar.scenes.inputs import ItemFacts


class ItemExists(ValueError):
    """Creating an item whose SKU the market already has."""


@db.point
def create_item(engine: Engine, market: str, item: ItemCreate, currency: str, *,
                actor: str = "api", source: str = "api") -> ItemFacts:
    """Add an item the market does not have yet (ItemExists otherwise), in the audit log
    and the public price history in the same transaction."""
    facts = ItemFacts(item.sku, item.name, item.price, currency, item.unit, item.stock,
                      item.status or ("sold_out" if item.stock == 0 else "in_stock"),
                      item.farm)
    with session_scope(engine) as session:
        if session.get(InventoryItem, (market, item.sku)) is not None:
            raise ItemExists(f"market {market!r} already has an item {item.sku!r}")
        session.add(service.new_item(market, facts, source))
        session.flush()
        audit.append(session, actor, "inventory.manual.created", market,
                     {"sku": item.sku, "new": service.facts_plain(facts)},
                     public=[PublicChange.of(item.sku, facts, source)])
    return facts


@db.point
def retire_item(engine: Engine, market: str, sku: str, *, actor: str = "api",
                source: str = "api", expected_version: str | None = None) -> ItemFacts:
    """Remove an item from the market (displays bound to it show it as gone); open held
    changes of it are closed as superseded. Returns the item as it was."""
    with session_scope(engine) as session:
        row = session.get(InventoryItem, (market, sku))
        if row is None:
            raise service.ItemNotFound(f"no item {sku!r} in market {market!r}")
        service.check_version(row, expected_version)
        old = service.to_facts(row)
        now = datetime.now(UTC)
        for held in session.exec(select(HeldChange).where(
                HeldChange.market == market, HeldChange.sku == sku,
                col(HeldChange.decision).is_(None))):
            held.decision, held.decided_at, held.decided_by = "superseded", now, actor[:120]
            session.add(held)
        session.delete(row)
        session.flush()
        audit.append(session, actor, "inventory.manual.retired", market,
                     {"sku": sku, "old": batches.facts_json(old)},
                     public=[PublicChange.of(sku, None, source)])
        feed = batches.lock_feed(session, market)
        feed.revision += 1
        session.add(feed)
    return old

