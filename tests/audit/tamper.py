"""What an attacker with the database would do: truncate the chains, or edit an entry and
recompute every hash after it so each chain is intact by itself."""

from __future__ import annotations

import json

from sqlalchemy import text
from sqlmodel import col, select

from holobazaar.audit import chain, public
from holobazaar.audit.models import GENESIS, AuditEntry, PublicRecord
from holobazaar.canonical import canonical_bytes
from holobazaar.db import session_scope


def truncate(engine, entries: int, market: str = "greenhaven") -> None:
    """Delete the last `entries` audit entries and the public records they recorded."""
    with session_scope(engine) as session:
        rows = list(session.exec(select(AuditEntry).order_by(col(AuditEntry.id).desc())
                                 .limit(entries)))
        first_public = None
        for row in rows:
            link = json.loads(row.detail).get("public")
            if link:
                first_public = link["from"] if first_public is None else min(first_public,
                                                                             link["from"])
            session.delete(row)
        if first_public is not None:
            session.execute(text("DELETE FROM audit_public WHERE market = :m AND seq >= :s"),
                            {"m": market, "s": first_public})


def rehash_public(engine, market: str, seq: int, price: str) -> None:
    """Change record `seq`'s price and recompute every hash from it on (a consistent,
    rewritten chain); the audit entries that recorded the old hashes are fixed too, and
    re-hashed, so the audit log is intact by itself as well."""
    mapping: dict[str, str] = {}
    with session_scope(engine) as session:
        prev = GENESIS
        for row in session.exec(select(PublicRecord).where(PublicRecord.market == market)
                                .order_by(col(PublicRecord.seq))):
            if row.seq == seq:
                row.price = price
            fields = {**public.body(row), "prev_hash": prev}
            new = public.record_hash(fields)
            mapping[row.hash] = new
            row.prev_hash, row.hash, prev = prev, new, new
            session.add(row)
    rehash_audit(engine, lambda entry: _relink(entry, mapping))


def _relink(entry: AuditEntry, mapping: dict[str, str]) -> None:
    detail = json.loads(entry.detail)
    link = detail.get("public")
    if link and link.get("head") in mapping:
        link["head"] = mapping[link["head"]]
        entry.detail = canonical_bytes(detail).decode()


def rehash_audit(engine, edit) -> None:
    """Apply `edit(entry)` to every entry, then recompute the whole chain's hashes."""
    with session_scope(engine) as session:
        rows = list(session.exec(select(AuditEntry).order_by(col(AuditEntry.id))))
        # Clear the unique hashes first, so the new values never collide with old ones.
        for n, row in enumerate(rows):
            row.prev_hash, row.hash = f"tmp-p-{n}", f"tmp-h-{n}"
            session.add(row)
        session.flush()
        prev = GENESIS
        for row in rows:
            edit(row)
            row.prev_hash = prev
            row.hash = chain.entry_hash(prev, row.time, row.actor, row.action, row.market,
                                        row.detail)
            prev = row.hash
            session.add(row)
