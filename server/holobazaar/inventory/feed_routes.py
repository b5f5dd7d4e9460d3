"""Feed and reconcile API: the signed push webhook, feed configuration, held changes,
mismatches, the glitch drill and the figures."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import datetime
from email.utils import format_datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Depends, Header, HTTPException, Path, Query, Request
from fastapi.security import APIKeyHeader
from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field
from sqlmodel import col, select
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.responses import JSONResponse, StreamingResponse

from holobazaar import db
from holobazaar.accounts.dependencies import require_role
from holobazaar.accounts.models import Principal
from holobazaar.audit import service as audit
from holobazaar.db import session_scope
from holobazaar.inventory import feeds, truth
from holobazaar.inventory.reconciler import KINDS, Reconciler
from holobazaar.inventory.replay import ReplayGuard
from holobazaar.inventory.tables import FeedConfig, HeldChange, ItemHistory, Mismatch
from holobazaar.scenes.loader import MarketContent
from holobazaar.validation import MAX_DB_INT

router = APIRouter(tags=["inventory truth"])


def _reconciler(request: Request) -> Reconciler:
    return request.app.state.reconciler


def _market(request: Request, market: str) -> MarketContent:
    found = request.app.state.scenes.market(market)
    if found is None:
        raise HTTPException(404, f"no market {market!r}")
    return found


def policy_of(settings) -> truth.Policy:
    return truth.Policy(settings.hold_price_change, settings.breaker_share,
                        settings.breaker_min)


def _secret(engine, market: str) -> str | None:
    with session_scope(engine) as session:
        feed = session.get(FeedConfig, market)
        return feed.secret if feed else None


# Declared so the OpenAPI document lists how the webhook authenticates; the route checks.
webhook_signature = APIKeyHeader(
    name=feeds.SIGNATURE_HEADER, auto_error=False, scheme_name="webhook_signature",
    description="v2=<hex HMAC-SHA256 of 'v2\\n<X-Holobazaar-Timestamp>\\n<Idempotency-Key>"
                "\\n<raw body>'> keyed with the market's webhook secret (docs/inventory.md).")


def _unauthorized(reason: str) -> JSONResponse:
    # The same detail as every other refused write (accounts), plus why.
    return JSONResponse({"detail": "authentication required", "reason": reason},
                        status_code=401, headers={"WWW-Authenticate": "HMAC-SHA256"})


def _replay_guard(request: Request) -> ReplayGuard:
    state = request.app.state
    if getattr(state, "replay_guard", None) is None:
        settings = state.settings
        state.replay_guard = ReplayGuard(state.engine, settings.inventory_replay_window,
                                         settings.inventory_v1_grace_days)
    return state.replay_guard


async def _count(request: Request, form: str, outcome: str) -> None:
    """Signed requests by form and outcome, in the figures every node shows (/metrics)."""
    await _reconciler(request).figures.add(f"signatures:{form}:{outcome}")


@router.post("/api/v1/inventory/{market}/events")
async def push_events(
    market: str, request: Request,
    signature: str | None = Depends(webhook_signature),
    timestamp: str | None = Header(None, alias=feeds.TIMESTAMP_HEADER),
    idempotency_key: str | None = Header(None, alias="Idempotency-Key"),
) -> JSONResponse:
    """A batch of upserts and removals from the market's stock system. Authenticated by
    the HMAC signature with the market's secret (not a user role: the caller is a machine
    holding the secret). Each signature is used once (remembered in the database, so on
    every node). Answered only once the batch is durably committed. The body's size is
    capped before it is read (inventory_max_body, web/limits.py)."""
    settings = request.app.state.settings
    engine = request.app.state.engine
    body = await request.body()
    secret = await db.call(engine, _secret, engine, market)
    try:
        signed = feeds.check_signature(secret, signature, timestamp, idempotency_key, body,
                                       settings.inventory_replay_window)
        key = feeds.check_key(idempotency_key)
    except feeds.SignatureError as exc:
        return _unauthorized(str(exc))
    except feeds.HeaderError as exc:
        raise HTTPException(400, str(exc)) from None
    guard = _replay_guard(request)
    legacy: dict[str, str] | None = None
    if signed.form == feeds.V1:
        until = await db.call(engine, guard.v1_until)
        if not guard.v1_accepted():
            await _count(request, signed.form, "refused")
            return _unauthorized(f"the old signing form (sha256=, without the Idempotency-Key) "
                                 f"is no longer accepted since {until:%Y-%m-%d %H:%M} UTC: "
                                 "sign v2 (docs/inventory.md)")
        # RFC 9745 / RFC 8594: the sender is told the old form goes away, and when.
        legacy = {"Deprecation": "true", "Sunset": format_datetime(until, usegmt=True)}
    if not await db.call(engine, guard.use, market, signed.digest, signed.form, key,
                         signed.timestamp):
        await _count(request, signed.form, "replayed")
        return _unauthorized("this signature was already used with another Idempotency-Key "
                             "(replayed request)")
    await _count(request, signed.form, "accepted")
    found = _market(request, market)
    try:
        rows = feeds.parse_json(body)
    except feeds.FeedFormatError as exc:
        raise HTTPException(400, str(exc), headers=legacy) from None
    try:
        result = await run_in_threadpool(
            truth.apply_batch, engine, market, rows, source="push",
            body_digest=feeds.body_hash(body), key=key,
            policy=policy_of(settings), currency=found.market.market.currency,
            actor=f"feed:{market}")
    except truth.IdempotencyConflict as exc:
        raise HTTPException(409, str(exc), headers=legacy) from None
    if not result.replayed:
        await _reconciler(request).feed_changed(market, result)
    headers = dict(legacy or {})
    if result.replayed:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(result.response, headers=headers or None)


class FeedSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pull_url: AnyHttpUrl | None = None
    pull_format: Literal["json", "csv"] = "json"
    pull_interval: float = Field(60.0, ge=1, le=86400)
    disappear: Literal["sold_out", "remove", "keep"] = "sold_out"


def _feed_out(feed: FeedConfig) -> dict:
    return {"market": feed.market, "has_secret": feed.secret is not None,
            "pull_url": feed.pull_url, "pull_format": feed.pull_format,
            "pull_interval": feed.pull_interval, "disappear": feed.disappear,
            "last_feed_at": feed.last_feed_at, "revision": feed.revision}


@router.put("/api/v1/inventory/{market}/feed")
async def put_feed(market: str, change: FeedSettings, request: Request,
                   principal: Principal = Depends(require_role("admin"))) -> dict:
    """Configure the pull feed (the secret is set with POST .../secret)."""
    _market(request, market)

    def write() -> dict:
        with session_scope(request.app.state.engine) as session:
            feed = truth.lock_feed(session, market)
            feed.pull_url = str(change.pull_url) if change.pull_url else None
            feed.pull_format, feed.pull_interval = change.pull_format, change.pull_interval
            feed.disappear, feed.etag, feed.last_modified = change.disappear, None, None
            feed.last_feed_at = feed.last_feed_at or truth._now()
            session.add(feed)
            audit.append(session, principal.actor, "inventory.feed", market,
                         change.model_dump(mode="json"))
            return _feed_out(feed)

    out = await run_in_threadpool(write)
    await feed_configured(request, market)
    return out


async def feed_configured(request: Request, market: str) -> None:
    """The feed's configuration changed: reload it and poll it afresh, here and (through
    the cluster's notifications, web/app.py) on every other node, including the one
    polling pull feeds."""
    await _reconciler(request).reload_feed(market)
    request.app.state.poller.due.pop(market, None)
    cluster = getattr(request.app.state, "cluster", None)
    if cluster is not None:
        await cluster.notify("feed", {"market": market})


@router.get("/api/v1/inventory/{market}/feed")
async def get_feed(market: str, request: Request,
                   _: Principal = Depends(require_role("curator"))) -> dict:
    _market(request, market)

    def read() -> dict:
        with session_scope(request.app.state.engine) as session:
            feed = session.get(FeedConfig, market) or FeedConfig(market=market)
            return _feed_out(feed)

    return await run_in_threadpool(read)


def new_secret(engine, market: str, actor: str) -> str:
    """Generate and store a market's webhook secret (replacing any); returned once."""
    secret = "hbs_" + secrets.token_urlsafe(32)
    with session_scope(engine) as session:
        feed = truth.lock_feed(session, market)
        feed.secret = secret
        # The staleness clock starts when a feed is configured, not at the epoch.
        feed.last_feed_at = feed.last_feed_at or truth._now()
        session.add(feed)
        audit.append(session, actor, "inventory.secret", market, {"rotated": True})
    return secret


@router.post("/api/v1/inventory/{market}/secret")
async def rotate_secret(market: str, request: Request,
                        principal: Principal = Depends(require_role("admin"))) -> dict:
    """A new webhook secret, shown only in this response."""
    _market(request, market)
    secret = await run_in_threadpool(new_secret, request.app.state.engine, market,
                                     principal.actor)
    await feed_configured(request, market)
    return {"market": market, "secret": secret}


@router.get("/api/v1/inventory/{market}/items/{sku}/history")
async def item_history(market: str, sku: str, request: Request,
                       _: Principal = Depends(require_role("curator"))) -> list[dict]:
    def read() -> list[dict]:
        with session_scope(request.app.state.engine) as session:
            return [r.model_dump() for r in session.exec(
                select(ItemHistory).where(ItemHistory.market == market, ItemHistory.sku == sku)
                .order_by(col(ItemHistory.id)))]

    return await run_in_threadpool(read)


# ---- reconcile -------------------------------------------------------------------------

@router.get("/api/v1/reconcile/{market}/summary")
async def summary(market: str, request: Request,
                  _: Principal = Depends(require_role("curator"))) -> dict:
    _market(request, market)
    summary = await _reconciler(request).summary(market)
    summary.pop("detected_by_kind")
    return summary


@router.get("/api/v1/reconcile/{market}/mismatches")
async def mismatches(market: str, request: Request,
                     kind: Literal[KINDS] | None = Query(None),  # type: ignore[valid-type]
                     open_only: bool = Query(False, alias="open"),
                     since: datetime | None = None, limit: int = Query(200, ge=1, le=5000),
                     _: Principal = Depends(require_role("curator"))) -> list[dict]:
    _market(request, market)

    def read() -> list[dict]:
        with session_scope(request.app.state.engine) as session:
            query = select(Mismatch).where(Mismatch.market == market)
            if kind:
                query = query.where(Mismatch.kind == kind)
            if open_only:
                query = query.where(col(Mismatch.resolved_at).is_(None))
            if since:
                query = query.where(Mismatch.detected_at >= since)
            return [m.model_dump() for m in session.exec(
                query.order_by(col(Mismatch.id).desc()).limit(limit))]

    return await run_in_threadpool(read)


@router.get("/api/v1/reconcile/{market}/held")
async def held(market: str, request: Request,
               _: Principal = Depends(require_role("curator"))) -> list[dict]:
    _market(request, market)
    rows = await run_in_threadpool(truth.open_held, request.app.state.engine, market)
    return [r.model_dump() for r in rows]


class Decision(BaseModel):
    """Why (optional for the API; the studio asks for it when rejecting)."""

    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(None, max_length=500)


async def _decide(request: Request, market: str, ids: list[int], decision: str,
                  principal: Principal, reason: str | None = None) -> dict:
    if decision not in ("approve", "reject"):
        raise HTTPException(404, f"unknown decision {decision!r} (approve or reject)")
    try:
        result = await run_in_threadpool(truth.decide, request.app.state.engine, market, ids,
                                         decision == "approve", principal.actor,
                                         (reason or "").strip() or None)
    except truth.HeldNotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except truth.SelfApproval as exc:  # four eyes: the requester cannot approve
        raise HTTPException(403, str(exc)) from None
    await _reconciler(request).feed_changed(market, result)
    return result.response


@router.post("/api/v1/reconcile/{market}/held/{held_id}/{decision}")
async def decide_one(market: str, held_id: Annotated[int, Path(ge=0, le=MAX_DB_INT)],
                     decision: str, request: Request,
                     body: Decision | None = Body(None),
                     principal: Principal = Depends(require_role("curator"))) -> dict:
    """Approve (apply) or reject (drop) one held change; an optional JSON body
    `{"reason": "..."}` is kept in the audit entry."""
    _market(request, market)
    return await _decide(request, market, [held_id], decision, principal,
                         body.reason if body else None)


@router.post("/api/v1/reconcile/{market}/batches/{batch_id}/{decision}")
async def decide_batch(market: str, batch_id: Annotated[int, Path(ge=0, le=MAX_DB_INT)],
                       decision: str, request: Request,
                       body: Decision | None = Body(None),
                       principal: Principal = Depends(require_role("curator"))) -> dict:
    """Approve or reject every open held change of one batch (a tripped circuit breaker)."""
    _market(request, market)
    ids = await run_in_threadpool(truth.held_ids_of_batch, request.app.state.engine, market,
                                  batch_id)
    if not ids:
        raise HTTPException(404, f"batch {batch_id} has no open held changes")
    return await _decide(request, market, ids, decision, principal,
                         body.reason if body else None)


class DrillRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seed: int | None = None
    displays: int | None = Field(None, ge=1, le=100_000)


@router.post("/api/v1/reconcile/{market}/drill")
async def drill(market: str, request: Request, body: DrillRequest = Body(DrillRequest()),
                principal: Principal = Depends(require_role("admin"))) -> dict:
    """The glitch drill: scramble some displays; the reconciler finds and repairs them."""
    _market(request, market)
    scrambled = await _reconciler(request).drill(market, body.seed, body.displays)

    def note() -> None:
        with session_scope(request.app.state.engine) as session:
            audit.append(session, principal.actor, "reconcile.drill", market,
                         {"seed": body.seed, "scrambled": scrambled})

    await run_in_threadpool(note)
    return {"market": market, "scrambled": scrambled}


@router.post("/api/v1/reconcile/{market}/sweep")
async def sweep(market: str, request: Request,
                _: Principal = Depends(require_role("curator"))) -> dict:
    """Run a full sweep of the market now."""
    _market(request, market)
    return await _reconciler(request).sweep(market)


# ---- audit chain (staff) ----------------------------------------------------------------

def verify_chain(engine) -> dict:
    with session_scope(engine) as session:
        problems = audit.verify(session)
        entries = audit.count(session)
    return {"ok": not problems, "problems": problems[:100], "problem_count": len(problems),
            "entries": entries, "checked_at": truth._now().isoformat()}


@router.get("/api/v1/markets/{market}/audit/verify", tags=["verifiable history"])
async def audit_verify(market: str, request: Request,
                       _: Principal = Depends(require_role("curator"))) -> dict:
    """Check the hash-chained audit log (every entry's hash and link, the public
    histories it records, the heads this server signed), as `holobazaar audit verify`
    does on the server: `ok`, and one line per problem."""
    _market(request, market)
    return await run_in_threadpool(verify_chain, request.app.state.engine)


@router.get("/api/v1/markets/{market}/audit/export", tags=["verifiable history"],
            response_class=StreamingResponse, responses={200: {
                "description": "JSON Lines, one audit entry per line.",
                "content": {"application/x-ndjson": {"schema": {"type": "string"}}}}})
async def audit_export(market: str, request: Request, since: datetime | None = None,
                       _: Principal = Depends(require_role("curator"))) -> StreamingResponse:
    """The market's audit entries as JSON Lines (each with its hash and prev_hash), as
    `holobazaar audit export` writes them; a download."""
    _market(request, market)
    engine = request.app.state.engine

    def lines() -> Iterator[str]:
        with session_scope(engine) as session:
            for line in audit.export_lines(session, since, market):
                yield line + "\n"

    stamp = truth._now().strftime("%Y%m%dT%H%M%SZ")
    return StreamingResponse(iterate_in_threadpool(lines()), media_type="application/x-ndjson",
                             headers={"Content-Disposition": f'attachment; filename="audit-'
                                      f'{market}-{stamp}.jsonl"', "Cache-Control": "no-store"})


__all__ = ["HeldChange", "router"]
