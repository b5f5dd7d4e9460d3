"""What the reconcile and history routes read and note in the database: an item's
history, the recorded mismatches, the drill's audit entry, and the audit chain's check
and export."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import col, select

from holobazaar.audit import service as audit
from holobazaar.db import session_scope
from holobazaar.inventory import batches
from holobazaar.inventory.tables import ItemHistory, Mismatch


def item_history(engine: Engine, market: str, sku: str) -> list[dict[str, Any]]:
    with session_scope(engine) as session:
        return [r.model_dump() for r in session.exec(
            select(ItemHistory).where(ItemHistory.market == market, ItemHistory.sku == sku)
            .order_by(col(ItemHistory.id)))]


def mismatches(engine: Engine, market: str, kind: str | None, open_only: bool,
               since: datetime | None, limit: int) -> list[dict[str, Any]]:
    """The market's recorded mismatches, newest first."""
    with session_scope(engine) as session:
        query = select(Mismatch).where(Mismatch.market == market)
        if kind:
            query = query.where(Mismatch.kind == kind)
        if open_only:
            query = query.where(col(Mismatch.resolved_at).is_(None))
        if since:
            query = query.where(Mismatch.detected_at >= since)
        return [m.model_dump() for m in session.exec(
            query.order_by(col(Mismatch.id).desc()).limit(limit))]


def note_drill(engine: Engine, actor: str, market: str, seed: int | None,
               scrambled: list[dict]) -> None:
    with session_scope(engine) as session:
        audit.append(session, actor, "reconcile.drill", market,
                     {"seed": seed, "scrambled": scrambled})


def verify_chain(engine: Engine) -> dict[str, Any]:
    with session_scope(engine) as session:
        problems = audit.verify(session)
        entries = audit.count(session)
    return {"ok": not problems, "problems": problems[:100], "problem_count": len(problems),
            "entries": entries, "checked_at": batches._now().isoformat()}


def export_lines(engine: Engine, since: datetime | None, market: str) -> Iterator[str]:
    """The market's audit entries as JSON Lines (one session for the whole export)."""
    with session_scope(engine) as session:
        for line in audit.export_lines(session, since, market):
            yield line + "\n"
