"""Append to and verify the hash-chained audit log. Callers pass their own database session
so the audit entry commits (or rolls back) together with the change it describes."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlmodel import Session, col, select

from holobazaar.audit import heads
from holobazaar.audit import public as public_chain
from holobazaar.audit.chain import entry_hash, time_text
from holobazaar.audit.models import GENESIS, AuditEntry
from holobazaar.audit.public import PublicChange
from holobazaar.canonical import canonical_bytes

# Any constant; serialises appends across processes on PostgreSQL.
_PG_LOCK_KEY = 0x486F6C6F  # "Holo"


def _head(session: Session) -> str:
    # The hash column only, not the entry as an object (every audited change reads it).
    last = session.exec(select(AuditEntry.hash).order_by(col(AuditEntry.id).desc())
                        .limit(1)).first()
    return last if last is not None else GENESIS


def append(session: Session, actor: str, action: str, market: str | None,
           detail: Mapping[str, Any] | None = None,
           public: Sequence[PublicChange] = ()) -> AuditEntry:
    """Add one entry chained to the current head (flushed, committed by the caller).

    `public`: the item changes this entry describes, as the public may see them. They are
    chained onto the market's public price history in the same transaction, and the entry
    records which records they became (`detail.public`: from, to, head hash), so the
    public history is a projection of this log (docs/inventory.md)."""
    # Take the database's write lock before reading the head, so concurrent appends queue
    # up instead of reading the same head (the unique prev_hash would refuse the second).
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
    elif dialect == "sqlite":
        # A no-op write opens the write transaction (waiting up to the busy timeout).
        session.execute(text("UPDATE audit_log SET id = id WHERE 0"))
    moment = datetime.now(UTC)
    detail = dict(detail or {})
    if public and market is not None:
        detail["public"] = public_chain.append(session, market, public, moment)
    detail_text = canonical_bytes(detail).decode("utf-8")
    prev = _head(session)
    entry = AuditEntry(time=moment, actor=actor[:120], action=action[:64], market=market,
                       detail=detail_text, prev_hash=prev,
                       hash=entry_hash(prev, moment, actor[:120], action[:64], market,
                                       detail_text))
    session.add(entry)
    session.flush()
    return entry


def verify(session: Session) -> list[str]:
    """The chain, the public histories it records, and the heads this server signed:
    one line per problem (empty: intact). A chain that lost its last entries, or was
    re-hashed after an edit, is intact by itself; the signed heads (kept apart) say how
    long it was and what its hash was (holobazaar.audit.heads)."""
    return heads.verify_local(session)


def recent(session: Session, limit: int = 100, action: str | None = None) -> list[AuditEntry]:
    query = select(AuditEntry).order_by(col(AuditEntry.id).desc()).limit(limit)
    if action is not None:
        query = query.where(AuditEntry.action == action)
    return list(session.exec(query))


def count(session: Session) -> int:
    from sqlalchemy import func

    return session.exec(select(func.count()).select_from(AuditEntry)).one()


def export_lines(session: Session, since: datetime | None = None,
                 market: str | None = None):
    """JSON Lines of the entries (time >= since; of one `market` when given), each with
    its hash and prev_hash, so an export can be checked against the chain."""
    query = select(AuditEntry).order_by(col(AuditEntry.id))
    if since is not None:
        query = query.where(AuditEntry.time >= since)
    if market is not None:
        query = query.where(AuditEntry.market == market)
    for entry in session.exec(query.execution_options(yield_per=1000)):
        yield json.dumps({"id": entry.id, "time": time_text(entry.time), "actor": entry.actor,
                          "action": entry.action, "market": entry.market,
                          "detail": json.loads(entry.detail), "prev_hash": entry.prev_hash,
                          "hash": entry.hash}, ensure_ascii=False)
