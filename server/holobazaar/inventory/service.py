"""Inventory as plain functions over the database. The scene service turns what these
return into display state (it gets item facts through `InventoryItems`, its
scenes.inputs.ItemStore); nothing here talks to clients."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Row, and_, bindparam, func, or_, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from holobazaar import db
from holobazaar.audit import service as audit
from holobazaar.audit.public import PublicChange
from holobazaar.db import as_utc, session_scope, table
from holobazaar.inventory.models import InventoryItem, ItemUpdate
from holobazaar.inventory.tables import FOUR_EYES, HeldChange
from holobazaar.scenes.inputs import PRICE_AT_STALL, ItemFacts


class ItemNotFound(LookupError):
    pass


class StaleVersion(Exception):
    """A change sent against an older version of the item (`If-Match`): someone else
    changed it since the sender read it. Nothing was changed."""

    def __init__(self, sku: str, current: ItemFacts, version: str) -> None:
        super().__init__(f"{sku} was changed since you read it (now version {version}): "
                         "reload it and make your change again")
        self.current, self.version = current, version


def item_version(row: ItemRow) -> str:
    """The stored item's version (its ETag): changes with every write of its facts."""
    moment = as_utc(row.updated_at)
    data = json.dumps([facts_plain(to_facts(row)),
                       moment.isoformat() if moment else None], sort_keys=True)
    return hashlib.sha256(data.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class StoredItem:
    """An item as the studio lists it: the facts plus where they came from and when."""

    facts: ItemFacts
    source: str
    updated_at: datetime | None
    source_timestamp: datetime | None
    version: str


@dataclass(frozen=True)
class ItemFilter:
    """What a list of items is narrowed to (all given conditions hold)."""

    text: str = ""  # in the name, SKU or farm id, case-insensitive
    status: str | None = None
    farm: str | None = None  # "-": no farm
    source: str | None = None
    skus: frozenset[str] | None = None


def stored_items(engine: Engine, market: str, where: ItemFilter | None = None,
                 limit: int | None = None) -> tuple[list[StoredItem], int]:
    """The market's items by name (at most `limit`) and how many match in all."""
    where = where or ItemFilter()
    query = select(InventoryItem).where(InventoryItem.market == market)
    if where.text:
        like = "%" + where.text.lower().replace("\\", "").replace("%", "").replace("_", "") + "%"
        query = query.where(or_(func.lower(InventoryItem.name).like(like),
                                func.lower(InventoryItem.sku).like(like),
                                func.lower(func.coalesce(InventoryItem.farm, "")).like(like)))
    if where.status:
        query = query.where(InventoryItem.status == where.status)
    if where.farm:
        query = query.where(col(InventoryItem.farm).is_(None) if where.farm == "-"
                            else InventoryItem.farm == where.farm)
    if where.source:
        query = query.where(InventoryItem.source == where.source)
    if where.skus is not None:
        query = query.where(col(InventoryItem.sku).in_(sorted(where.skus)[:500] or [""]))
    with session_scope(engine) as session:
        total = session.exec(select(func.count()).select_from(query.subquery())).one()
        query = query.order_by(col(InventoryItem.name), col(InventoryItem.sku))
        rows = session.exec(query.limit(limit) if limit else query).all()
        return [StoredItem(to_facts(r), r.source, as_utc(r.updated_at),
                           as_utc(r.source_timestamp), item_version(r)) for r in rows], total


@db.point
def stored_item(engine: Engine, market: str, sku: str) -> StoredItem | None:
    """One stored item with its version, or None."""
    with session_scope(engine) as session:
        row = session.get(InventoryItem, (market, sku))
        if row is None:
            return None
        return StoredItem(to_facts(row), row.source, as_utc(row.updated_at),
                          as_utc(row.source_timestamp), item_version(row))


def item_sources(engine: Engine, market: str) -> list[str]:
    with session_scope(engine) as session:
        return sorted(session.exec(select(InventoryItem.source).where(
            InventoryItem.market == market).distinct()))


def facts_plain(facts: ItemFacts) -> dict[str, Any]:
    """The facts as JSON values (as the audit log and held changes store them)."""
    return {"sku": facts.sku, "name": facts.name, "price": str(facts.price),
            "currency": facts.currency, "unit": facts.unit, "stock": facts.stock,
            "status": facts.status, "farm": facts.farm}


@db.point
def version_of(engine: Engine, market: str, sku: str) -> str | None:
    with session_scope(engine) as session:
        row = session.get(InventoryItem, (market, sku))
        return item_version(row) if row is not None else None


# A manual change's read and write of one item, in Core (prebuilt: no ORM object, no
# statement built per request). The written columns are `_columns`'.
_ITEMS = table(InventoryItem)
_THE_ITEM = and_(_ITEMS.c.market == bindparam("m"), _ITEMS.c.sku == bindparam("s"))
_ITEM_ROW = _ITEMS.select().where(_THE_ITEM)
_ITEM_WRITE = update(_ITEMS).where(_THE_ITEM).values({
    name: bindparam(f"v_{name}", type_=_ITEMS.c[name].type)
    for name in ("name", "price", "currency", "unit", "stock", "status", "farm", "source",
                 "updated_at")}).returning(*_ITEMS.c)

# A stored item: the ORM row or a Core row of the table (the same attributes).
ItemRow = InventoryItem | Row[Any]


def check_version(row: ItemRow, expected: str | None) -> None:
    if expected is not None and expected.strip('"') != item_version(row):
        raise StaleVersion(row.sku, to_facts(row), item_version(row))


def to_facts(row: ItemRow) -> ItemFacts:
    return ItemFacts(row.sku, row.name, row.price, row.currency, row.unit, row.stock,
                     row.status, row.farm)


def load_items(engine: Engine, market: str) -> dict[str, ItemFacts]:
    """The market's items as displays may show them: an item with an open held change (the
    feed's holds, not a four-eyes request) carries the "price at the stall" notice, so
    whatever is composed from this - at start-up too, before the reconciler runs - shows
    neither the old nor the new price."""
    with session_scope(engine) as session:
        rows = session.exec(select(InventoryItem).where(InventoryItem.market == market)).all()
        held = set(session.exec(select(HeldChange.sku).where(
            HeldChange.market == market, col(HeldChange.decision).is_(None),
            HeldChange.reason != FOUR_EYES)))
        return {row.sku: replace(to_facts(row), notice=PRICE_AT_STALL) if row.sku in held
                else to_facts(row) for row in rows}


def price_of(facts: ItemFacts) -> Decimal:
    """A stored item's price: ItemFacts allows None (a display's "no price to show"), an
    item in the inventory always has one."""
    if facts.price is None:
        raise ValueError(f"item {facts.sku}: no price")
    return facts.price


def _columns(facts: ItemFacts, source: str, now: datetime | None) -> dict[str, Any]:
    return {"name": facts.name, "price": price_of(facts), "currency": facts.currency,
            "unit": facts.unit, "stock": facts.stock, "status": facts.status,
            "farm": facts.farm, "source": source, "updated_at": now or datetime.now(UTC)}


def new_item(market: str, facts: ItemFacts, source: str,
             now: datetime | None = None) -> InventoryItem:
    """The row of an item the database does not have yet."""
    return InventoryItem(market=market, sku=facts.sku, **_columns(facts, source, now))


def write_item(row: InventoryItem, facts: ItemFacts, source: str,
               now: datetime | None = None) -> None:
    """Store `facts` over an item's row (its feed version and time are left alone)."""
    for key, value in _columns(facts, source, now).items():
        setattr(row, key, value)


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
                session.add(new_item(market, facts, "content"))
                written.append(sku)
            elif previous is not None and previous.get(sku) not in (None, facts):
                write_item(row, facts, "content")
                session.add(row)
                written.append(sku)
        if written:  # the prices the files set start the public price history
            session.flush()
            audit.append(session, "content", "inventory.seed", market,
                         {"skus": sorted(written)},
                         public=[PublicChange.of(sku, seed[sku], "content")
                                 for sku in sorted(written)])
    return written


class InventoryItems:
    """The stored items as the scene service gets them (scenes.inputs.ItemStore): seeded
    from the content files, loaded with the holds' notices."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def seed(self, market: str, seed: Mapping[str, ItemFacts],
             previous: Mapping[str, ItemFacts] | None) -> None:
        for attempt in range(3):
            try:
                seed_items(self.engine, market, seed, previous)
                return
            except IntegrityError:
                # Another node seeding the same shared database won the race: the rows
                # are there now, so the next round finds them.
                if attempt == 2:
                    raise

    def load(self, market: str) -> dict[str, ItemFacts]:
        return load_items(self.engine, market)


def amount_text(amount: Decimal) -> str:
    """A stored amount as people write it: two decimals, more only when it has them."""
    cents = amount.quantize(Decimal("0.01"))
    return str(cents) if cents == amount else format(amount.normalize(), "f")


class ConfirmationRequired(Exception):
    """A manual price change beyond the hold policy, sent without `"confirm": true`."""

    def __init__(self, check: PriceCheck) -> None:
        super().__init__(check.message())
        self.check = check


class ApprovalPending(Exception):
    """A confirmed change in a `four_eyes` market: stored as held change `held_id`, not
    applied, until another curator approves it."""

    def __init__(self, check: PriceCheck, held_id: int, requested_by: str,
                 superseded: list[int], current: ItemFacts) -> None:
        super().__init__(f"the change of {check.sku} waits for a second curator's approval "
                         f"(held change {held_id})")
        self.check, self.held_id, self.requested_by = check, held_id, requested_by
        self.superseded, self.current = superseded, current


@dataclass(frozen=True)
class PriceCheck:
    """A price change measured against the hold policy: what a confirm step shows."""

    sku: str
    old: Decimal
    new: Decimal
    currency: str
    threshold: float  # percent (HOLOBAZAAR_HOLD_PRICE_CHANGE)

    def _move(self) -> Decimal | None:
        return None if self.old == 0 else (self.new - self.old) / self.old * 100

    @property
    def percent(self) -> Decimal | None:
        """The move in percent of the old price, two decimals; None from a price of 0."""
        move = self._move()
        return None if move is None else move.quantize(Decimal("0.01"))

    @property
    def beyond(self) -> bool:
        """The policy's rule, for the feed's events and manual changes alike."""
        if self.old == self.new:
            return False
        move = self._move()
        return move is None or abs(move) > Decimal(str(self.threshold))

    def message(self) -> str:
        moved = "from 0" if self.percent is None else f"{self.percent:+}%"
        return (f"the price of {self.sku} moves {moved} ({amount_text(self.old)} -> "
                f"{amount_text(self.new)} "
                f"{self.currency}), more than the {self.threshold:g}% the hold policy "
                "allows without confirmation")

    def as_json(self) -> dict[str, Any]:
        return {"sku": self.sku, "field": "price", "old": amount_text(self.old),
                "new": amount_text(self.new),
                "currency": self.currency,
                "percent": None if self.percent is None else float(self.percent),
                "threshold": self.threshold}


def update_item(engine: Engine, market: str, sku: str, change: ItemUpdate,
                source: str = "api", *, actor: str = "api", hold_price_change: float = 50.0,
                four_eyes: bool = False, expected_version: str | None = None) -> ItemFacts:
    """`change_item` without the version (see there)."""
    return change_item(engine, market, sku, change, source, actor=actor,
                       hold_price_change=hold_price_change, four_eyes=four_eyes,
                       expected_version=expected_version)[0]


@db.point
def change_item(engine: Engine, market: str, sku: str, change: ItemUpdate,
                source: str = "api", *, actor: str = "api", hold_price_change: float = 50.0,
                four_eyes: bool = False, expected_version: str | None = None,
                also: Callable[[Session], None] | None = None) -> tuple[ItemFacts, str]:
    """A curator's manual change, under the same hold policy as the feed. Returns the
    item as applied. A price moving more than `hold_price_change` percent needs
    `change.confirm` (else ConfirmationRequired, nothing stored); in a `four_eyes` market
    such a confirmed change is stored as a held change for a second curator (raises
    ApprovalPending; truth.decide applies it). Every outcome that stores something is
    in the audit log with `actor`, in the same transaction. `expected_version` (the
    item's version the sender read, `If-Match`): StaleVersion when it has changed since.
    Returns the item as applied and its version. `also`: more to write in the same
    transaction, first (the request's own audit record: one transaction per request)."""
    fields = change.model_dump(exclude_none=True, exclude={"confirm"})
    with session_scope(engine) as session:
        if also is not None:
            also(session)
        connection = session.connection()
        key = {"m": market, "s": sku}
        row = connection.execute(_ITEM_ROW, key).first()
        if row is None:
            raise ItemNotFound(f"no item {sku!r} in market {market!r}")
        check_version(row, expected_version)
        old = to_facts(row)
        new = replace(old, **fields)
        if new == old:
            return old, item_version(row)  # nothing to change, store or audit
        check = PriceCheck(sku, price_of(old), price_of(new), old.currency, hold_price_change)
        if check.beyond and not change.confirm:
            raise ConfirmationRequired(check)
        detail: dict[str, Any] = {
            "sku": sku, "change": _plain(fields), "old": facts_plain(old),
            "new": facts_plain(new),
            "price_check": check.as_json() if check.beyond else None}
        if check.beyond and four_eyes:
            held, superseded = request_approval(session, market, old, new, fields, actor)
            audit.append(session, actor, "inventory.manual.requested", market,
                         {**detail, "held": held, "superseded": superseded})
            pending = ApprovalPending(check, held, actor, superseded, old)
        else:
            # One UPDATE ... RETURNING: the row as stored (its price's scale) for the
            # version, without loading it as an ORM object and reading it back.
            values = {f"v_{name}": value for name, value in _columns(new, source, None).items()}
            stored = connection.execute(_ITEM_WRITE, {**key, **values}).one()
            action = ("inventory.manual.confirmed" if check.beyond
                      else "inventory.manual.applied")
            audit.append(session, actor, action, market, detail,
                         public=[PublicChange.of(sku, new, source)])
            return new, item_version(stored)
    raise pending  # after the commit: the held change is stored


def request_approval(session: Session, market: str, old: ItemFacts, new: ItemFacts,
                     fields: dict[str, Any], actor: str) -> tuple[int, list[int]]:
    """Store a manual change as a held change for a second curator (reason FOUR_EYES).
    `fields` is what the curator changed; approval applies them to the item as it is
    then. A newer request for the same item supersedes an older open one. Returns the
    held change's id and the ids it superseded."""
    now = datetime.now(UTC)
    superseded: list[int] = []
    for older in session.exec(select(HeldChange).where(
            HeldChange.market == market, HeldChange.sku == old.sku,
            HeldChange.reason == FOUR_EYES, col(HeldChange.decision).is_(None))):
        older.decision, older.decided_at, older.decided_by = "superseded", now, actor[:120]
        session.add(older)
        assert older.id is not None  # a stored row
        superseded.append(older.id)
    held = HeldChange(market=market, sku=old.sku, reason=FOUR_EYES,
                      old=json.dumps(facts_plain(old)),
                      new=json.dumps({"op": "upsert", "version": None, "timestamp": None,
                                      "facts": facts_plain(new),
                                      "fields": {k: str(v) if isinstance(v, Decimal) else v
                                                 for k, v in fields.items()}}),
                      created_at=now, requested_by=actor[:120])
    session.add(held)
    session.flush()
    return held.id or 0, superseded


def _plain(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: str(v) if isinstance(v, Decimal) else v for k, v in fields.items()}

