"""Public, read-only routes of the verifiable price history: an item's history, a market's
public records, its signed head and public key, and what this server witnesses. No
sign-in; no actor, no secret in any answer (docs/inventory.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request
from sqlmodel import col, select
from starlette.concurrency import run_in_threadpool

from holobazaar import db
from holobazaar.audit import heads, public
from holobazaar.audit.models import PublicRecord
from holobazaar.db import session_scope
from holobazaar.validation import MAX_DB_INT

router = APIRouter(prefix="/api/v1", tags=["verifiable history"])

MAX_LIMIT = 1000


def _engine(request: Request):
    return request.app.state.engine


def _market(request: Request, market: str) -> None:
    if request.app.state.scenes.market(market) is None:
        raise HTTPException(404, f"no market {market!r}")


def _moment(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise HTTPException(422, f"{name}: {value[:40]!r} is not an ISO 8601 time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def sign_head(engine, market: str) -> dict[str, Any]:
    with session_scope(engine) as session:
        return heads.issue(session, market)


async def signed_head(request: Request, market: str) -> dict[str, Any]:
    try:
        return await run_in_threadpool(sign_head, _engine(request), market)
    except heads.ChainBehind as exc:
        raise HTTPException(503, str(exc)) from None


def _page(engine, market: str, after: int, limit: int, sku: str | None = None,
          since: datetime | None = None, until: datetime | None = None) -> list[PublicRecord]:
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


def _known_sku(engine, market: str, sku: str) -> bool:
    with session_scope(engine) as session:
        return session.exec(select(PublicRecord.id).where(
            PublicRecord.market == market, PublicRecord.sku == sku).limit(1)).first() is not None


@router.get("/markets/{market}/items/{sku}/history")
async def item_history(
    market: str, sku: str, request: Request,
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
    _market(request, market)
    start, end = _moment(since, "since"), _moment(until, "until")
    engine = _engine(request)
    if sku not in request.app.state.scenes.items.get(market, {}) and not await db.call(
            engine, _known_sku, engine, market, sku):
        raise HTTPException(404, f"no item {sku!r} in market {market!r}")
    # Up to MAX_LIMIT rows: off the event loop (db.call runs SQLite reads in place).
    rows = await run_in_threadpool(_page, engine, market, cursor, limit, sku, start, end)
    return {"market": market, "sku": sku, "records": [public.to_json(r) for r in rows],
            "next_cursor": rows[-1].seq if len(rows) == limit else None}


@router.get("/markets/{market}/audit/records")
async def records(market: str, request: Request,
                  after: int = Query(0, ge=0, le=MAX_DB_INT,
                                     description="Records after this seq."),
                  limit: int = Query(MAX_LIMIT, ge=1, le=MAX_LIMIT)) -> dict[str, Any]:
    """The market's whole public chain in order, page by page: what a verifier recomputes."""
    _market(request, market)
    engine = _engine(request)
    rows = await run_in_threadpool(_page, engine, market, after, limit)
    return {"market": market, "records": [public.to_json(r) for r in rows],
            "next_cursor": rows[-1].seq if len(rows) == limit else None}


@router.get("/markets/{market}/audit/head")
async def head(market: str, request: Request) -> dict[str, Any]:
    """The market's current chain head, signed with its Ed25519 key."""
    _market(request, market)
    return await signed_head(request, market)


def _key(engine, market: str) -> str:
    with session_scope(engine) as session:
        return heads.market_key(session, market).public_key


@router.get("/markets/{market}/audit/key")
async def key(market: str, request: Request) -> dict[str, Any]:
    """The market's public key (raw Ed25519, hex) that verifies its heads."""
    _market(request, market)
    engine = _engine(request)
    public_key = await db.call(engine, _key, engine, market)
    return {"market": market, "alg": "Ed25519", "key": public_key}


@router.get("/audit/heads")
async def all_heads(request: Request) -> dict[str, Any]:
    """Every market's signed head (what witnesses poll)."""
    content = request.app.state.scenes.content
    found = []
    for market in sorted(content.markets) if content else []:
        found.append(await signed_head(request, market))
    return {"heads": found}


@router.get("/witness")
async def witnessed(request: Request) -> dict[str, Any]:
    """The servers this one witnesses, their status and the last signed head kept of each
    of their markets."""
    service = request.app.state.witness
    return {"interval": service.interval,
            "witnesses": await run_in_threadpool(service.listing)}
