"""Database side of pulse: plain functions over an Engine (called in a thread pool)."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from holobazaar.audit import service as audit
from holobazaar.db import as_utc, session_scope, table
from holobazaar.pulse.aggregator import (
    DWELL_BUCKETS,
    KINDS,
    LONG_DWELL,
    Figures,
    MinuteRow,
    median_dwell,
    mood,
)
from holobazaar.pulse.models import PulseEvent, PulseFeedback, PulseMinute, PulseSalt


def day_salt(engine: Engine, day: str) -> bytes:
    """The salt of `day` (UTC, YYYY-MM-DD), made on first use; older salts are deleted so
    earlier device hashes cannot be linked to today's. Every node of a cluster hashes with
    the same salt: when two make it at once, the one that loses the insert reads the other's."""
    try:
        return _day_salt(engine, day)
    except IntegrityError:
        return _day_salt(engine, day)


def _day_salt(engine: Engine, day: str) -> bytes:
    with session_scope(engine) as session:
        row = session.get(PulseSalt, day)
        if row is None:
            row = PulseSalt(day=day, salt=secrets.token_hex(32))
            session.add(row)
        session.execute(delete(PulseSalt).where(col(PulseSalt.day) != day))
        return bytes.fromhex(row.salt)


def add_events(engine: Engine, events: Sequence[dict]) -> None:
    if not events:
        return
    with session_scope(engine) as session:
        session.execute(table(PulseEvent).insert(), list(events))


def events_since(engine: Engine, since: datetime) -> list[PulseEvent]:
    with session_scope(engine) as session:
        return list(session.exec(select(PulseEvent).where(PulseEvent.at >= since)
                                 .order_by(col(PulseEvent.at), col(PulseEvent.id))))


def prune_events(engine: Engine, before: datetime) -> int:
    with session_scope(engine) as session:
        result = session.exec(delete(PulseEvent).where(col(PulseEvent.at) < before))
        return result.rowcount or 0


def stored_minutes(engine: Engine, since: datetime) -> set[tuple[str, int, str, str]]:
    """(market, minute as UTC seconds, scope, scope_id) of the rows stored since `since`."""
    query = select(PulseMinute.market, PulseMinute.minute, PulseMinute.scope,
                   PulseMinute.scope_id).where(PulseMinute.minute >= since)
    with session_scope(engine) as session:
        return {(m, int(as_utc(t).timestamp()), s, i) for m, t, s, i in session.exec(query)}


def row_counts(row: PulseMinute) -> list[int]:
    """A stored minute's counts in the aggregator's order (kinds, then dwell buckets)."""
    return [row.love, row.wow, row.hungry, row.learn, *_hist(row.dwell_hist)]


def _hist(text: str) -> list[int]:
    values = [int(v) for v in text.split(",")] if text else []
    return values + [0] * (len(DWELL_BUCKETS) - len(values))


def _fill(row: PulseMinute, counts: list[int], devices: int) -> None:
    kinds = dict(zip(KINDS, counts[:len(KINDS)], strict=True))
    hist = counts[len(KINDS):]
    row.devices = devices
    row.love, row.wow, row.hungry, row.learn = (kinds[k] for k in KINDS)
    row.dwell_hist = ",".join(str(c) for c in hist)
    row.dwell_median = median_dwell(hist)
    long_dwells = sum(c for b, c in zip(DWELL_BUCKETS, hist, strict=True) if b >= LONG_DWELL)
    row.mood = mood(kinds, long_dwells, devices)


def add_minutes(engine: Engine, market: str, rows: Iterable[MinuteRow]) -> None:
    """Store closed minutes. A minute already stored (the server stopped and restarted
    within it) is merged: counts add up, distinct devices add up too (an upper bound: the
    two halves cannot be de-duplicated once the device sets are gone)."""
    with session_scope(engine) as session:
        for r in rows:
            existing = session.exec(select(PulseMinute).where(
                PulseMinute.market == market, PulseMinute.scope == r.scope,
                PulseMinute.scope_id == r.scope_id, PulseMinute.minute == r.minute)).first()
            counts, devices = list(r.figures.counts), r.figures.devices
            if existing is None:
                existing = PulseMinute(market=market, scope=r.scope, scope_id=r.scope_id,
                                       minute=r.minute, devices=0, love=0, wow=0, hungry=0,
                                       learn=0, dwell_hist="", mood=0)
            else:
                old = row_counts(existing)
                counts = [a + b for a, b in zip(counts, old, strict=True)]
                devices += existing.devices
            _fill(existing, counts, devices)
            session.add(existing)


def minutes(engine: Engine, market: str, since: datetime, until: datetime, k: int,
            scope: str | None = None, scope_id: str | None = None) -> list[PulseMinute]:
    """Stored minutes in [since, until) with at least k distinct devices (k-anonymity:
    smaller groups are never returned)."""
    query = select(PulseMinute).where(
        PulseMinute.market == market, PulseMinute.minute >= since, PulseMinute.minute < until,
        PulseMinute.devices >= k)
    if scope is not None:
        query = query.where(PulseMinute.scope == scope)
    if scope_id is not None:
        query = query.where(PulseMinute.scope_id == scope_id)
    query = query.order_by(col(PulseMinute.minute), col(PulseMinute.scope),
                           col(PulseMinute.scope_id))
    with session_scope(engine) as session:
        found = list(session.exec(query))
    for row in found:  # SQLite hands back naive datetimes; they are stored as UTC
        row.minute = as_utc(row.minute)
    return found


def hold_feedback(engine: Engine, items: Sequence[dict]) -> None:
    if not items:
        return
    with session_scope(engine) as session:
        session.execute(table(PulseFeedback).insert(), list(items))


def feedback(engine: Engine, market: str, status: str | None, limit: int) -> list[PulseFeedback]:
    query = select(PulseFeedback).where(PulseFeedback.market == market)
    if status is not None:
        query = query.where(PulseFeedback.status == status)
    with session_scope(engine) as session:
        return list(session.exec(query.order_by(col(PulseFeedback.id).desc()).limit(limit)))


class AlreadyDecided(Exception):
    """A curator decides a note once, as a community submission (HTTP 409)."""


def decide_feedback(engine: Engine, market: str, item_id: int, status: str,
                    who: str, reason: str | None = None) -> PulseFeedback | None:
    """Approve or reject a held note (None: no such note in this market). Audited like
    moderation decisions on submissions (`note.approve`, `note.reject`)."""
    with session_scope(engine) as session:
        row = session.get(PulseFeedback, item_id)
        if row is None or row.market != market:
            return None
        if row.status != "held":
            raise AlreadyDecided(f"note {item_id} was already {row.status}")
        row.status, row.decided_by = status, who[:64]
        row.reason = reason[:200] if reason else None
        session.add(row)
        action = "approve" if status == "approved" else "reject"
        audit.append(session, who, f"note.{action}", market,
                     {"id": item_id, "reason": reason or ""})
        return row


__all__ = ["Figures"]
