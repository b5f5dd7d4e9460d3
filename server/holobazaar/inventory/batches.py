"""Applying feed batches to the stored truth, and deciding held changes.

One batch is one transaction: items, their history, the held changes, the batch record
(idempotency key, body hash, response) and the audit entry commit together, and the HTTP
response is sent only after that commit (SQLite: synchronous=FULL for it)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, text, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from holobazaar.audit import service as audit
from holobazaar.audit.public import PublicChange
from holobazaar.db import session_scope, table
from holobazaar.inventory.feeds import FeedEvent, Parsed, RowError
from holobazaar.inventory.models import InventoryItem
from holobazaar.inventory.service import PriceCheck, new_item, price_of, to_facts, write_item
from holobazaar.inventory.service import facts_plain as facts_json
from holobazaar.inventory.tables import (
    FOUR_EYES,
    FeedBatch,
    FeedConfig,
    HeldChange,
    ItemHistory,
)
from holobazaar.scenes.inputs import ItemFacts

DISAPPEAR_RULES = ("sold_out", "remove", "keep")


@dataclass(frozen=True)
class Policy:
    hold_price_change: float = 50.0  # percent
    breaker_share: float = 0.5
    breaker_min: int = 10
    # False: no price change is held (a curator's reviewed and confirmed file import).
    hold_prices: bool = True


@dataclass
class BatchResult:
    response: dict[str, Any]
    applied: list[ItemFacts] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    held: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)  # SKUs whose open hold was superseded
    replayed: bool = False
    bumped: bool = False  # this change moved the market's feed revision by one


class IdempotencyConflict(Exception):
    pass


def _now() -> datetime:
    return datetime.now(UTC)


def facts_from_json(data: dict[str, Any]) -> ItemFacts:
    return ItemFacts(data["sku"], data["name"], Decimal(data["price"]), data["currency"],
                     data["unit"], data["stock"], data["status"], data["farm"])


def _durable(session: Session) -> None:
    # WAL + synchronous=NORMAL may lose the last commits on power loss; an acknowledged
    # feed batch must survive, so this connection fsyncs its commit.
    if session.get_bind().dialect.name == "sqlite":
        session.connection().exec_driver_sql("PRAGMA synchronous=FULL")


def _restore(engine: Engine) -> None:
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA synchronous=NORMAL")


def lock_feed(session: Session, market: str) -> FeedConfig:
    """The market's feed row, write-locked: batches of one market apply one at a time."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text("UPDATE inventory_feed SET revision = revision WHERE market = :m"),
                        {"m": market})
    feed = session.exec(select(FeedConfig).where(FeedConfig.market == market)
                        .with_for_update()).first()
    if feed is None:
        feed = FeedConfig(market=market)
        session.add(feed)
        session.flush()
    return feed


def _rows(session: Session, market: str, skus: Sequence[str]) -> dict[str, InventoryItem]:
    found: dict[str, InventoryItem] = {}
    unique = sorted(set(skus))
    for start in range(0, len(unique), 500):  # SQLite's bound-parameter limit
        chunk = unique[start:start + 500]
        for row in session.exec(select(InventoryItem).where(
                InventoryItem.market == market, col(InventoryItem.sku).in_(chunk))):
            found[row.sku] = row
    return found


def _derive(event: FeedEvent, old: ItemFacts | None, currency: str) -> ItemFacts | str:
    """The item after an upsert, or why it cannot be applied."""
    if old is None and (event.name is None or event.price is None):
        return "a new item needs at least name and price"
    status: str | None = event.status
    if status is None and event.stock is not None:
        status = "sold_out" if event.stock == 0 else (
            "in_stock" if old is None or old.status == "sold_out" else old.status)
    base = old or ItemFacts(event.sku, "", Decimal(0), currency, "each", None, "in_stock",
                            None)
    return replace(
        base,
        name=event.name if event.name is not None else base.name,
        price=event.price if event.price is not None else base.price,
        currency=event.currency or base.currency,
        unit=event.unit or base.unit,
        stock=event.stock if event.stock is not None else base.stock,
        status=status or base.status,
        farm=event.producer if event.producer is not None else base.farm,
    )


def _suspicious_price(old: ItemFacts | None, new: ItemFacts, percent: float) -> bool:
    if old is None:
        return False
    return PriceCheck(new.sku, price_of(old), price_of(new), new.currency, percent).beyond


@dataclass
class _Change:
    sku: str
    op: str  # upsert | remove
    old: ItemFacts | None
    new: ItemFacts | None
    version: int | None
    stamp: datetime | None


def apply_batch(engine: Engine, market: str, rows: Sequence[Parsed], *,
                source: str, body_digest: str, key: str | None, policy: Policy,
                currency: str, snapshot_rule: str | None = None,
                actor: str = "feed") -> BatchResult:
    """Apply a batch. `snapshot_rule` (pull/file full snapshots): what happens to stored
    items the snapshot does not list: sold_out, remove or keep."""
    try:
        with session_scope(engine) as session:
            _durable(session)
            return _apply(session, market, rows, source=source, body_digest=body_digest,
                          key=key, policy=policy, currency=currency,
                          snapshot_rule=snapshot_rule, actor=actor)
    finally:
        _restore(engine)


def _apply(session: Session, market: str, rows: Sequence[Parsed], *,
           source: str, body_digest: str, key: str | None, policy: Policy, currency: str,
           snapshot_rule: str | None, actor: str) -> BatchResult:
    feed = lock_feed(session, market)
    if key is not None:
        seen = session.exec(select(FeedBatch).where(FeedBatch.market == market,
                                                    FeedBatch.idempotency_key == key)).first()
        if seen is not None:
            if seen.body_hash != body_digest:
                raise IdempotencyConflict(
                    f"Idempotency-Key {key!r} was used for a different body (batch {seen.id})")
            return BatchResult(json.loads(seen.response), replayed=True)
    rejected = [r.as_dict() for _, r in rows if isinstance(r, RowError)]
    events = [(line, r) for line, r in rows if isinstance(r, FeedEvent)]
    stored = _rows(session, market, [e.sku for _, e in events])
    # None once removed in this batch.
    current: dict[str, ItemFacts | None] = {sku: to_facts(row) for sku, row in stored.items()}
    versions = {sku: row.source_version for sku, row in stored.items()}
    changes: dict[str, _Change] = {}
    ignored = unchanged = 0
    for line, event in events:
        if event.source_version is not None and event.source_version <= versions.get(
                event.sku, -1):
            ignored += 1  # older than what we have: out of order, never a regression
            continue
        old = current.get(event.sku)
        if event.op == "remove":
            if old is None:
                ignored += 1
                continue
            new: ItemFacts | None = None
        else:
            derived = _derive(event, old, currency)
            if isinstance(derived, str):
                rejected.append(RowError(line, event.sku, derived).as_dict())
                continue
            new = derived
        if event.source_version is not None:
            versions[event.sku] = event.source_version
        current[event.sku] = new
        first = changes.get(event.sku)
        changes[event.sku] = _Change(event.sku, event.op, first.old if first else old, new,
                                     event.source_version, event.source_timestamp)
    if snapshot_rule in ("sold_out", "remove"):
        listed = {e.sku for _, e in events}
        for row in session.exec(select(InventoryItem).where(InventoryItem.market == market)):
            if row.sku in listed:
                continue
            stored[row.sku] = row
            old = to_facts(row)
            if snapshot_rule == "remove":
                changes[row.sku] = _Change(row.sku, "remove", old, None, None, None)
            elif old.status != "sold_out" or old.stock not in (0, None):
                changes[row.sku] = _Change(row.sku, "upsert", old,
                                           replace(old, status="sold_out", stock=0), None, None)
    real = {sku: c for sku, c in changes.items() if c.old != c.new}
    unchanged += len(changes) - len(real)
    total = session.exec(select(func.count()).select_from(InventoryItem)
                         .where(InventoryItem.market == market)).one()
    breaker = len(real) >= policy.breaker_min and len(real) > policy.breaker_share * max(total, 1)
    now = _now()
    batch = FeedBatch(market=market, source=source, idempotency_key=key,
                      body_hash=body_digest, response="{}", received_at=now)
    session.add(batch)
    session.flush()
    result = BatchResult({})
    open_holds = {h.sku: h for h in session.exec(select(HeldChange).where(
        HeldChange.market == market, col(HeldChange.decision).is_(None),
        col(HeldChange.sku).in_(list(real) or [""])))} if len(real) < 500 else {
        h.sku: h for h in session.exec(select(HeldChange).where(
            HeldChange.market == market, col(HeldChange.decision).is_(None))) if h.sku in real}
    writer = _Writer(market, batch.id, now, source)
    for sku, change in real.items():
        previous_hold = open_holds.get(sku)
        if previous_hold is not None:
            # A newer event replaces a change still waiting for a curator.
            previous_hold.decision, previous_hold.decided_at = "superseded", now
            previous_hold.decided_by = actor
            session.add(previous_hold)
        reason = "circuit_breaker" if breaker else (
            "price_change" if policy.hold_prices and change.new is not None and _suspicious_price(
                change.old, change.new, policy.hold_price_change) else None)
        if reason is not None:
            writer.holds.append(dict(
                market=market, sku=sku, batch_id=batch.id, reason=reason,
                old=json.dumps(facts_json(change.old)) if change.old else None,
                new=json.dumps({"op": change.op, "version": change.version,
                                "timestamp": change.stamp.isoformat() if change.stamp else None,
                                "facts": facts_json(change.new) if change.new else None}),
                created_at=now))
            result.held.append(sku)
            continue
        if previous_hold is not None:
            result.released.append(sku)
        stored_row = stored.get(sku)
        writer.change(change, stored_row.source_version if stored_row is not None else None)
        if change.new is None:
            result.removed.append(sku)
        else:
            result.applied.append(change.new)
    # Versions of unchanged events still advance (the event was seen).
    done = {f.sku for f in result.applied} | set(result.removed) | set(result.held)
    for sku, version in versions.items():
        stored_row = stored.get(sku)
        if stored_row is not None and sku not in done and version > stored_row.source_version:
            writer.versions.append({"market": market, "sku": sku, "source_version": version})
    writer.flush(session)
    feed.last_feed_at, feed.revision = now, feed.revision + 1
    result.bumped = True
    session.add(feed)
    response = {"batch": batch.id, "market": market, "received": len(rows),
                "applied": len(result.applied), "removed": len(result.removed),
                "held": len(result.held), "circuit_breaker": breaker,
                "ignored": ignored, "unchanged": unchanged, "rejected": rejected}
    batch.response = json.dumps(response)
    session.add(batch)
    audit.append(session, actor, "inventory.batch", market, {
        "batch": batch.id, "source": source, "idempotency_key": key, "body_sha256": body_digest,
        "applied": sorted(f.sku for f in result.applied), "removed": sorted(result.removed),
        "held": sorted(result.held), "circuit_breaker": breaker, "ignored": ignored,
        "rejected": len(rejected)}, public=[
            *(PublicChange.of(f.sku, f, source) for f in result.applied),
            *(PublicChange.of(sku, None, source) for sku in result.removed)])
    result.response = response
    return result


class _Writer:
    """Collects a batch's writes and issues them as bulk statements: building one ORM
    object per row costs about a millisecond, too much for batches of thousands."""

    def __init__(self, market: str, batch_id: int | None, now: datetime, source: str) -> None:
        self.market, self.batch_id, self.now, self.source = market, batch_id, now, source
        self.inserts: list[dict] = []
        self.updates: list[dict] = []
        self.versions: list[dict] = []
        self.deletes: list[str] = []
        self.history: list[dict] = []
        self.holds: list[dict] = []

    def change(self, change: _Change, stored_version: int | None) -> None:
        data: dict[str, Any] = {}
        if change.new is None:
            if stored_version is not None:
                self.deletes.append(change.sku)
        else:
            facts = change.new
            values: dict[str, Any] = dict(
                market=self.market, sku=facts.sku, name=facts.name, price=facts.price,
                currency=facts.currency, unit=facts.unit, stock=facts.stock,
                status=facts.status, farm=facts.farm, source=self.source, updated_at=self.now,
                source_version=max(stored_version or 0, change.version or 0))
            if change.stamp is not None:
                values["source_timestamp"] = change.stamp
            if stored_version is None:
                values.setdefault("source_timestamp", None)
                self.inserts.append(values)
            else:
                self.updates.append(values)
            data = facts_json(facts)
        self.history.append(dict(market=self.market, sku=change.sku, batch_id=self.batch_id,
                                 op=change.op, data=json.dumps(data),
                                 source_version=change.version, at=self.now))

    def flush(self, session: Session) -> None:
        item = table(InventoryItem)
        for start in range(0, len(self.deletes), 500):
            session.execute(delete(item).where(
                item.c.market == self.market, item.c.sku.in_(self.deletes[start:start + 500])))
        keyed = [u for u in self.updates if "source_timestamp" in u]
        plain = [u for u in self.updates if "source_timestamp" not in u]
        for group in (keyed, plain, self.versions):
            if group:
                columns = [k for k in group[0] if k not in ("market", "sku")]
                statement = update(item).where(
                    item.c.market == bindparam("b_market"), item.c.sku == bindparam("b_sku")
                ).values({c: bindparam(c) for c in columns})
                session.execute(statement, [
                    {**{c: g[c] for c in columns}, "b_market": g["market"], "b_sku": g["sku"]}
                    for g in group])
        if self.inserts:
            session.execute(insert(item), self.inserts)
        if self.history:
            session.execute(insert(table(ItemHistory)), self.history)
        if self.holds:
            session.execute(insert(table(HeldChange)), self.holds)


def _write_change(session: Session, market: str, row: InventoryItem | None, change: _Change,
                  batch_id: int | None, now: datetime, source: str) -> None:
    if change.new is None:
        if row is not None:
            session.delete(row)
        data: dict[str, Any] = {}
    else:
        facts = change.new
        if row is None:
            row = new_item(market, facts, source, now)
        else:
            write_item(row, facts, source, now)
        if change.version is not None:
            row.source_version = max(row.source_version or 0, change.version)
        if change.stamp is not None:
            row.source_timestamp = change.stamp
        session.add(row)
        data = facts_json(facts)
    session.add(ItemHistory(market=market, sku=change.sku, batch_id=batch_id, op=change.op,
                            data=json.dumps(data), source_version=change.version, at=now))


def open_held(engine: Engine, market: str | None = None) -> list[HeldChange]:
    with session_scope(engine) as session:
        query = select(HeldChange).where(col(HeldChange.decision).is_(None))
        if market is not None:
            query = query.where(HeldChange.market == market)
        return list(session.exec(query.order_by(col(HeldChange.id))))


class HeldNotFound(LookupError):
    pass


class SelfApproval(PermissionError):
    """A curator tried to approve the four-eyes change they requested themselves."""


def _requested(session: Session, market: str, held: HeldChange,
               new: dict[str, Any]) -> dict[str, Any]:
    """A four-eyes change applied to the item as it is now (other fields may have moved
    since the request)."""
    row = session.get(InventoryItem, (market, held.sku))
    if row is None:
        raise HeldNotFound(f"item {held.sku!r} of held change {held.id} no longer exists")
    fields = dict(new["fields"])
    if "price" in fields:
        fields["price"] = Decimal(fields["price"])
    return facts_json(replace(to_facts(row), **fields))


def decide(engine: Engine, market: str, ids: Iterable[int], approve: bool,
           actor: str, reason: str | None = None) -> BatchResult:
    """Approve (apply) or reject (drop) open held changes; `reason` (the curator's words)
    goes into the audit entry of each decision."""
    result = BatchResult({"decided": []})
    with session_scope(engine) as session:
        lock_feed(session, market)
        now = _now()
        for held_id in ids:
            held = session.get(HeldChange, held_id)
            if held is None or held.market != market or held.decision is not None:
                raise HeldNotFound(f"no open held change {held_id} in market {market!r}")
            if approve and held.requested_by is not None and held.requested_by == actor[:120]:
                raise SelfApproval(f"held change {held.id} was requested by {actor}: another "
                                   "curator must approve it")
            held.decision = "approved" if approve else "rejected"
            held.decided_at, held.decided_by = now, actor[:120]
            session.add(held)
            new = json.loads(held.new)
            if approve and held.reason == FOUR_EYES:
                new["facts"] = _requested(session, market, held, new)
            if approve:
                facts = facts_from_json(new["facts"]) if new["facts"] else None
                stamp = datetime.fromisoformat(new["timestamp"]) if new["timestamp"] else None
                change = _Change(held.sku, new["op"], None, facts, new["version"], stamp)
                _write_change(session, market, session.get(InventoryItem, (market, held.sku)),
                              change, held.batch_id, now, "held")
                if facts is None:
                    result.removed.append(held.sku)
                else:
                    result.applied.append(facts)
            if held.reason != FOUR_EYES:  # a four-eyes change never masked the item
                result.released.append(held.sku)
            requester = {"requested_by": held.requested_by} if held.requested_by else {}
            if reason:
                requester["reason"] = reason
            audit.append(session, actor, "inventory.held." + held.decision, market, {
                "held": held.id, "sku": held.sku, "reason": held.reason, "batch": held.batch_id,
                "old": json.loads(held.old) if held.old else None, "new": new, **requester},
                public=[PublicChange.of(held.sku, facts, "held")] if approve else ())
            result.response["decided"].append({"id": held.id, "sku": held.sku,
                                               "decision": held.decision})
        feed = lock_feed(session, market)
        feed.revision += 1
        session.add(feed)
        result.bumped = True
    return result


def held_ids_of_batch(engine: Engine, market: str, batch_id: int) -> list[int]:
    with session_scope(engine) as session:
        return [h.id for h in session.exec(select(HeldChange).where(
            HeldChange.market == market, HeldChange.batch_id == batch_id,
            col(HeldChange.decision).is_(None))) if h.id is not None]
