"""Append to and verify the hash-chained audit log. Callers pass their own database session
so the audit entry commits (or rolls back) together with the change it describes."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, text
from sqlmodel import Session, col, select

from holobazaar.audit import heads
from holobazaar.audit import public as public_chain
from holobazaar.audit.chain import entry_hash, new_entry_hash, time_text
from holobazaar.audit.models import GENESIS, AuditEntry
from holobazaar.audit.public import PublicChange
from holobazaar.canonical import canonical_fast, is_plain
from holobazaar.db import table

# Any constant; serialises appends across processes on PostgreSQL.
_PG_LOCK_KEY = 0x486F6C6F  # "Holo"
_PG_LOCK = text("SELECT pg_advisory_xact_lock(:k)")
# A no-op write opens SQLite's write transaction (waiting up to the busy timeout).
_SQLITE_LOCK = text("UPDATE audit_log SET id = id WHERE 0")
_LOG = table(AuditEntry)
# The hash column only, not the entry as an object (every audited change reads it).
_HEAD = select(_LOG.c.hash).order_by(_LOG.c.id.desc()).limit(1)
_INSERT = insert(_LOG)
# session.info key: (transaction, savepoint, head) after this session's last append.
_HEAD_KEY = "holobazaar.audit.head"


def _head(session: Session) -> str:
    """The chain's head, the write lock held. A second append in the same transaction (a
    request's token record, then its change) chains from the first's hash in memory: the
    lock is the transaction's, so nobody appended in between. A savepoint left or rolled
    back since, or a new transaction, reads again (and the unique prev_hash refuses any
    fork regardless)."""
    known = session.info.get(_HEAD_KEY)
    if known is not None and known[0] is session.get_transaction() and known[1] is (
            session.get_nested_transaction()):
        return known[2]
    # Take the database's write lock before reading the head, so concurrent appends queue
    # up instead of reading the same head (the unique prev_hash would refuse the second).
    connection = session.connection()
    dialect = connection.dialect.name
    if dialect == "postgresql":
        connection.execute(_PG_LOCK, {"k": _PG_LOCK_KEY})
    elif dialect == "sqlite":
        connection.execute(_SQLITE_LOCK)
    last = connection.execute(_HEAD).scalar()
    return last if last is not None else GENESIS


def append(session: Session, actor: str, action: str, market: str | None,
           detail: Mapping[str, Any] | None = None,
           public: Sequence[PublicChange] = ()) -> str:
    """Add one entry chained to the current head (committed by the caller); returns its
    hash.

    `public`: the item changes this entry describes, as the public may see them. They are
    chained onto the market's public price history in the same transaction, and the entry
    records which records they became (`detail.public`: from, to, head hash), so the
    public history is a projection of this log (docs/inventory.md)."""
    prev = _head(session)
    moment = datetime.now(UTC)
    detail = dict(detail or {})
    if public and market is not None:
        detail["public"] = public_chain.append(session, market, public, moment)
    detail_bytes = canonical_fast(detail)  # once: stored as is and spliced into the hash
    actor, action = actor[:120], action[:64]
    if is_plain(detail):
        digest = new_entry_hash(prev, time_text(moment), actor, action, market, detail_bytes)
    else:  # floats: the verifier's own way (one that reads back as a too-large integer
        # is refused here, as the verifier would refuse it)
        digest = entry_hash(prev, moment, actor, action, market, detail_bytes.decode())
    # A Core insert: the entry is not needed as an ORM object (~0.3 ms less per entry).
    session.connection().execute(_INSERT, {
        "time": moment, "actor": actor, "action": action, "market": market,
        "detail": detail_bytes.decode("utf-8"), "prev_hash": prev, "hash": digest})
    session.info[_HEAD_KEY] = (session.get_transaction(), session.get_nested_transaction(),
                               digest)
    return digest


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
