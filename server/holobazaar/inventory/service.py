"""Inventory as plain functions over the database. The scene service turns what these
return into display state; nothing here talks to clients."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from sqlalchemy.engine import Engine
from sqlmodel import select

from holobazaar.audit import service as audit
from holobazaar.audit.public import PublicChange
from holobazaar.db import session_scope
from holobazaar.inventory.models import InventoryItem, ItemUpdate
from holobazaar.scenes.compositor import ItemFacts


class ItemNotFound(LookupError):
    pass


def to_facts(row: InventoryItem) -> ItemFacts:
    return ItemFacts(row.sku, row.name, row.price, row.currency, row.unit, row.stock,
                     row.status, row.farm)


def load_items(engine: Engine, market: str) -> dict[str, ItemFacts]:
    with session_scope(engine) as session:
        rows = session.exec(select(InventoryItem).where(InventoryItem.market == market)).all()
        return {row.sku: to_facts(row) for row in rows}


def _write(row: InventoryItem, facts: ItemFacts, source: str) -> None:
    row.name, row.price, row.currency = facts.name, facts.price, facts.currency
    row.unit = facts.unit
    row.stock, row.status, row.farm = facts.stock, facts.status, facts.farm
    row.source, row.updated_at = source, datetime.now(UTC)


def seed_items(engine: Engine, market: str, seed: Mapping[str, ItemFacts],
               previous: Mapping[str, ItemFacts] | None = None) -> list[str]:
    """Insert items the database does not have yet. With `previous` (the seed as the files
    said before an edit), items whose file values changed are updated too. Returns the
    SKUs written."""
    written: list[str] = []
    with session_scope(engine) as session:
        existing = {row.sku: row for row in session.exec(
            select(InventoryItem).where(InventoryItem.market == market)).all()}
        for sku, facts in seed.items():
            row = existing.get(sku)
            if row is None:
                row = InventoryItem(market=market, sku=sku)
                _write(row, facts, "content")
                session.add(row)
                written.append(sku)
            elif previous is not None and previous.get(sku) not in (None, facts):
                _write(row, facts, "content")
                session.add(row)
                written.append(sku)
        if written:  # the prices the files set start the public price history
            session.flush()
            audit.append(session, "content", "inventory.seed", market,
                         {"skus": sorted(written)},
                         public=[PublicChange.of(sku, seed[sku], "content")
                                 for sku in sorted(written)])
    return written


def update_item(engine: Engine, market: str, sku: str, change: ItemUpdate,
                source: str = "api") -> ItemFacts:
    with session_scope(engine) as session:
        row = session.get(InventoryItem, (market, sku))
        if row is None:
            raise ItemNotFound(f"no item {sku!r} in market {market!r}")
        for key, value in change.model_dump(exclude_none=True).items():
            setattr(row, key, value)
        row.source, row.updated_at = source, datetime.now(UTC)
        session.add(row)
        session.flush()
        return to_facts(row)
