"""The public price history as routes and pages read it: pages of a market's public
records, whether an item has any, the market's public key and its signed head. Each
function opens its own session; callers run them off the event loop."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import col, select

from holobazaar import db
from holobazaar.audit import heads
from holobazaar.audit.models import PublicRecord
from holobazaar.db import session_scope


def sign_head(engine: Engine, market: str) -> dict[str, Any]:
    """The market's current head, signed (raises heads.ChainBehind when the chain is behind
    a head signed before)."""
    with session_scope(engine) as session:
        return heads.issue(session, market)


def page(engine: Engine, market: str, after: int, limit: int, sku: str | None = None,
         since: datetime | None = None, until: datetime | None = None) -> list[PublicRecord]:
    """Up to `limit` records after `seq`, oldest first, optionally of one item and time span."""
    with session_scope(engine) as session:
        query = select(PublicRecord).where(PublicRecord.market == market,
                                           col(PublicRecord.seq) > after)
        if sku is not None:
            query = query.where(PublicRecord.sku == sku)
        if since is not None:
            query = query.where(col(PublicRecord.time) >= since)
        if until is not None:
            query = query.where(col(PublicRecord.time) < until)
        return list(session.exec(query.order_by(col(PublicRecord.seq)).limit(limit)))


@db.point
def has_item(engine: Engine, market: str, sku: str) -> bool:
    """The item has a public record (it may be gone from the inventory since)."""
    with session_scope(engine) as session:
        return session.exec(select(PublicRecord.id).where(
            PublicRecord.market == market, PublicRecord.sku == sku).limit(1)).first() is not None


@db.point
def public_key(engine: Engine, market: str) -> str:
    with session_scope(engine) as session:
        return heads.market_key(session, market).public_key
