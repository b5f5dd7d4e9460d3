"""Public, read-only routes of the verifiable price history: an item's history, a market's
public records, its signed head and public key, and what this server witnesses. No
sign-in; no actor, no secret in any answer (docs/inventory.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Query
from sqlalchemy.engine import Engine

from holobazaar import db
from holobazaar.audit import heads, history, public
from holobazaar.audit.dependencies import WitnessDep
from holobazaar.dependencies import EngineDep
from holobazaar.scenes.dependencies import Scenes, market_or_404
from holobazaar.validation import MAX_DB_INT

router = APIRouter(prefix="/api/v1", tags=["verifiable history"])

MAX_LIMIT = 1000


def _moment(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise HTTPException(422, f"{name}: {value[:40]!r} is not an ISO 8601 time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def signed_head(engine: Engine, market: str) -> dict[str, Any]:
    """The market's signed head, or 503 when its chain is behind a head signed before."""
    try:
        return await db.call(engine, history.sign_head, engine, market)
    except heads.ChainBehind as exc:
        raise HTTPException(503, str(exc)) from None


@router.get("/markets/{market}/items/{sku}/history")
async def item_history(
    market: str, sku: str, scenes: Scenes, engine: EngineDep,
    cursor: int = Query(0, ge=0, le=MAX_DB_INT,
                        description="`next_cursor` of the previous page."),
    limit: int = Query(100, ge=1, le=MAX_LIMIT, description=f"Records per page (at most "
                       f"{MAX_LIMIT})."),
    since: str | None = Query(None, description="Records at or after this ISO 8601 time."),
    until: str | None = Query(None, description="Records before this ISO 8601 time."),
) -> dict[str, Any]:
    """An item's public price history, oldest first: time, price, stock status and the
    kind of source of every change, each with its place (`seq`) and hash in the market's
    public chain. Anyone may read it."""
    market_or_404(scenes, market)
    start, end = _moment(since, "since"), _moment(until, "until")
    if sku not in scenes.items.get(market, {}) and not await db.call(
            engine, history.has_item, engine, market, sku):
        raise HTTPException(404, f"no item {sku!r} in market {market!r}")
    # Up to MAX_LIMIT rows: not a point read, so db.call runs it in a worker thread.
    rows = await db.call(engine, history.page, engine, market, cursor, limit, sku, start, end)
    return {"market": market, "sku": sku, "records": [public.to_json(r) for r in rows],
            "next_cursor": rows[-1].seq if len(rows) == limit else None}


@router.get("/markets/{market}/audit/records")
async def records(market: str, scenes: Scenes, engine: EngineDep,
                  after: int = Query(0, ge=0, le=MAX_DB_INT,
                                     description="Records after this seq."),
                  limit: int = Query(MAX_LIMIT, ge=1, le=MAX_LIMIT)) -> dict[str, Any]:
    """The market's whole public chain in order, page by page: what a verifier recomputes."""
    market_or_404(scenes, market)
    rows = await db.call(engine, history.page, engine, market, after, limit)
    return {"market": market, "records": [public.to_json(r) for r in rows],
            "next_cursor": rows[-1].seq if len(rows) == limit else None}


@router.get("/markets/{market}/audit/head")
async def head(market: str, scenes: Scenes, engine: EngineDep) -> dict[str, Any]:
    """The market's current chain head, signed with its Ed25519 key."""
    market_or_404(scenes, market)
    return await signed_head(engine, market)


@router.get("/markets/{market}/audit/key")
async def key(market: str, scenes: Scenes, engine: EngineDep) -> dict[str, Any]:
    """The market's public key (raw Ed25519, hex) that verifies its heads."""
    market_or_404(scenes, market)
    public_key = await db.call(engine, history.public_key, engine, market)
    return {"market": market, "alg": "Ed25519", "key": public_key}


@router.get("/audit/heads")
async def all_heads(scenes: Scenes, engine: EngineDep) -> dict[str, Any]:
    """Every market's signed head (what witnesses poll)."""
    content = scenes.content
    found = []
    for market in sorted(content.markets) if content else []:
        found.append(await signed_head(engine, market))
    return {"heads": found}


@router.get("/witness")
async def witnessed(service: WitnessDep) -> dict[str, Any]:
    """The servers this one witnesses, their status and the last signed head kept of each
    of their markets."""
    return {"interval": service.interval,
            "witnesses": await db.call(service.engine, service.listing)}
