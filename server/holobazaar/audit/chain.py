"""The audit log's hash chain: how an entry's hash is made and the walk that checks every
link (service.py appends, heads.py signs and compares heads against this walk)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Set as AbstractSet
from datetime import UTC, datetime

from sqlmodel import Session, col, select

from holobazaar.audit.models import GENESIS, AuditEntry
from holobazaar.canonical import canonical_bytes, canonical_fast
from holobazaar.db import as_utc


def time_text(moment: datetime) -> str:
    """A stored time as the hashed text: UTC, microseconds."""
    return as_utc(moment).astimezone(UTC).isoformat(timespec="microseconds")


def entry_hash(prev_hash: str, moment: datetime, actor: str, action: str,
               market: str | None, detail: str) -> str:
    body = {"time": time_text(moment), "actor": actor, "action": action, "market": market,
            "detail": json.loads(detail), "prev_hash": prev_hash}
    return hashlib.sha256(prev_hash.encode("ascii") + canonical_bytes(body)).hexdigest()


def new_entry_hash(prev_hash: str, when: str, actor: str, action: str, market: str | None,
                   detail: bytes) -> str:
    """`entry_hash` of an entry being appended whose `detail` is already canonical bytes:
    the body's canonical form is spliced around them (its keys in RFC 8785 order) instead
    of parsing and canonicalising the detail again. tests/audit checks both agree."""
    text = canonical_fast
    body = b"".join((b'{"action":', text(action), b',"actor":', text(actor), b',"detail":',
                     detail, b',"market":', text(market), b',"prev_hash":', text(prev_hash),
                     b',"time":', text(when), b"}"))
    return hashlib.sha256(prev_hash.encode("ascii") + body).hexdigest()


def walk(session: Session, heights: AbstractSet[int] = frozenset(),
         ) -> tuple[list[str], dict[int, str], int, list[tuple]]:
    """Walk the chain in id order: (one line per broken link, {height: hash} for the asked
    heights, the chain's height, the public-history links its entries record)."""
    problems: list[str] = []
    found: dict[int, str] = {}
    links: list[tuple[int, str, int, str]] = []
    prev = GENESIS
    height = 0
    rows = session.exec(select(AuditEntry).order_by(col(AuditEntry.id))
                        .execution_options(yield_per=1000))
    for entry in rows:
        assert entry.id is not None  # a stored row
        height += 1
        if entry.prev_hash != prev:
            problems.append(f"entry {entry.id}: prev_hash does not match entry before it")
        expected = entry_hash(entry.prev_hash, entry.time, entry.actor, entry.action,
                              entry.market, entry.detail)
        if expected != entry.hash:
            problems.append(f"entry {entry.id}: hash does not match its content")
        if '"public"' in entry.detail and entry.market is not None:
            link = json.loads(entry.detail).get("public")
            if isinstance(link, dict) and isinstance(link.get("to"), int):
                links.append((entry.id, entry.market, link["to"], str(link.get("head"))))
        if height in heights:
            found[height] = entry.hash
        prev = entry.hash
    return problems, found, height, links
