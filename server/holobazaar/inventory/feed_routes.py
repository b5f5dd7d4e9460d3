"""Feed and reconcile API: the signed push webhook, feed configuration, held changes,
mismatches, the glitch drill and the figures."""

from __future__ import annotations

from datetime import datetime
from email.utils import format_datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Depends, Header, HTTPException, Path, Query, Request
from fastapi.security import APIKeyHeader
from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field
from sqlalchemy.engine import Engine
from starlette.concurrency import iterate_in_threadpool
from starlette.responses import JSONResponse, StreamingResponse

from holobazaar import db
from holobazaar.accounts.dependencies import require_role
from holobazaar.accounts.models import Principal
from holobazaar.cluster import Cluster
from holobazaar.inventory import batches, feed_config, feeds, records
from holobazaar.inventory.dependencies import (
    ClusterDep,
    EngineDep,
    PollerDep,
    ReconcilerDep,
    ReplayGuardDep,
    Scenes,
    SettingsDep,
    market_or_404,
)
from holobazaar.inventory.drill import scramble
from holobazaar.inventory.feed_config import new_secret as new_secret  # its old home
from holobazaar.inventory.mismatches import MismatchKind
from holobazaar.inventory.pull import Poller
from holobazaar.inventory.reconciler import Reconciler
from holobazaar.inventory.tables import HeldChange
from holobazaar.validation import MAX_DB_INT

router = APIRouter(tags=["inventory truth"])


def policy_of(settings) -> batches.Policy:
    return batches.Policy(settings.hold_price_change, settings.breaker_share,
                        settings.breaker_min)


# Declared so the OpenAPI document lists how the webhook authenticates; the route checks.
webhook_signature = APIKeyHeader(
    name=feeds.SIGNATURE_HEADER, auto_error=False, scheme_name="webhook_signature",
    description="v2=<hex HMAC-SHA256 of 'v2\\n<X-Holobazaar-Timestamp>\\n<Idempotency-Key>"
                "\\n<raw body>'> keyed with the market's webhook secret (docs/inventory.md).")


def _unauthorized(reason: str) -> JSONResponse:
    # The same detail as every other refused write (accounts), plus why.
    return JSONResponse({"detail": "authentication required", "reason": reason},
                        status_code=401, headers={"WWW-Authenticate": "HMAC-SHA256"})


async def _count(reconciler: Reconciler, form: str, outcome: str) -> None:
    """Signed requests by form and outcome, in the figures every node shows (/metrics)."""
    await reconciler.figures.add(f"signatures:{form}:{outcome}")


@router.post("/api/v1/inventory/{market}/events")
async def push_events(
    market: str, request: Request, scenes: Scenes, engine: EngineDep, settings: SettingsDep,
    reconciler: ReconcilerDep, guard: ReplayGuardDep,
    signature: str | None = Depends(webhook_signature),
    timestamp: str | None = Header(None, alias=feeds.TIMESTAMP_HEADER),
    idempotency_key: str | None = Header(None, alias="Idempotency-Key"),
) -> JSONResponse:
    """A batch of upserts and removals from the market's stock system. Authenticated by
    the HMAC signature with the market's secret (not a user role: the caller is a machine
    holding the secret). Each signature is used once (remembered in the database, so on
    every node). Answered only once the batch is durably committed. The body's size is
    capped before it is read (inventory_max_body, web/limits.py)."""
    body = await request.body()
    secret = await db.call(engine, feed_config.secret_of, engine, market)
    try:
        signed = feeds.check_signature(secret, signature, timestamp, idempotency_key, body,
                                       settings.inventory_replay_window)
        key = feeds.check_key(idempotency_key)
    except feeds.SignatureError as exc:
        return _unauthorized(str(exc))
    except feeds.HeaderError as exc:
        raise HTTPException(400, str(exc)) from None
    legacy: dict[str, str] | None = None
    if signed.form == feeds.V1:
        until = await db.call(engine, guard.v1_until)
        if not guard.v1_accepted():
            await _count(reconciler, signed.form, "refused")
            return _unauthorized(f"the old signing form (sha256=, without the Idempotency-Key) "
                                 f"is no longer accepted since {until:%Y-%m-%d %H:%M} UTC: "
                                 "sign v2 (docs/inventory.md)")
        # RFC 9745 / RFC 8594: the sender is told the old form goes away, and when.
        legacy = {"Deprecation": "true", "Sunset": format_datetime(until, usegmt=True)}
    if not await db.call(engine, guard.use, market, signed.digest, signed.form, key,
                         signed.timestamp):
        await _count(reconciler, signed.form, "replayed")
        return _unauthorized("this signature was already used with another Idempotency-Key "
                             "(replayed request)")
    await _count(reconciler, signed.form, "accepted")
    found = market_or_404(scenes, market)
    try:
        rows = feeds.parse_json(body)
    except feeds.FeedFormatError as exc:
        raise HTTPException(400, str(exc), headers=legacy) from None
    try:
        result = await db.call(
            engine, batches.apply_batch, engine, market, rows, source="push",
            body_digest=feeds.body_hash(body), key=key,
            policy=policy_of(settings), currency=found.market.market.currency,
            actor=f"feed:{market}")
    except batches.IdempotencyConflict as exc:
        raise HTTPException(409, str(exc), headers=legacy) from None
    if not result.replayed:
        await reconciler.feed_changed(market, result)
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


@router.put("/api/v1/inventory/{market}/feed")
async def put_feed(market: str, change: FeedSettings, scenes: Scenes, engine: EngineDep,
                   reconciler: ReconcilerDep, poller: PollerDep, cluster: ClusterDep,
                   principal: Principal = Depends(require_role("admin"))) -> dict:
    """Configure the pull feed (the secret is set with POST .../secret)."""
    market_or_404(scenes, market)
    out = await db.call(
        engine, feed_config.configure_pull, engine, market,
        str(change.pull_url) if change.pull_url else None, change.pull_format,
        change.pull_interval, change.disappear, principal.actor, change.model_dump(mode="json"))
    await feed_configured(reconciler, poller, cluster, market)
    return out


async def feed_configured(reconciler: Reconciler, poller: Poller, cluster: Cluster | None,
                          market: str) -> None:
    """The feed's configuration changed: reload it and poll it afresh, here and (through
    the cluster's notifications, web/app.py) on every other node, including the one
    polling pull feeds."""
    await reconciler.reload_feed(market)
    poller.due.pop(market, None)
    if cluster is not None:
        await cluster.notify("feed", {"market": market})


@router.get("/api/v1/inventory/{market}/feed")
async def get_feed(market: str, scenes: Scenes, engine: EngineDep,
                   _: Principal = Depends(require_role("curator"))) -> dict:
    market_or_404(scenes, market)
    return await db.call(engine, feed_config.read_feed, engine, market)


@router.post("/api/v1/inventory/{market}/secret")
async def rotate_secret(market: str, scenes: Scenes, engine: EngineDep,
                        reconciler: ReconcilerDep, poller: PollerDep, cluster: ClusterDep,
                        principal: Principal = Depends(require_role("admin"))) -> dict:
    """A new webhook secret, shown only in this response."""
    market_or_404(scenes, market)
    secret = await db.call(engine, feed_config.new_secret, engine, market, principal.actor)
    await feed_configured(reconciler, poller, cluster, market)
    return {"market": market, "secret": secret}


@router.get("/api/v1/inventory/{market}/items/{sku}/history")
async def item_history(market: str, sku: str, engine: EngineDep,
                       _: Principal = Depends(require_role("curator"))) -> list[dict]:
    return await db.call(engine, records.item_history, engine, market, sku)


# ---- reconcile -------------------------------------------------------------------------

@router.get("/api/v1/reconcile/{market}/summary")
async def summary(market: str, scenes: Scenes, reconciler: ReconcilerDep,
                  _: Principal = Depends(require_role("curator"))) -> dict:
    market_or_404(scenes, market)
    summary = await reconciler.summary(market)
    summary.pop("detected_by_kind")
    return summary


@router.get("/api/v1/reconcile/{market}/mismatches")
async def mismatches(market: str, scenes: Scenes, engine: EngineDep,
                     kind: MismatchKind | None = Query(None),
                     open_only: bool = Query(False, alias="open"),
                     since: datetime | None = None, limit: int = Query(200, ge=1, le=5000),
                     _: Principal = Depends(require_role("curator"))) -> list[dict]:
    market_or_404(scenes, market)
    return await db.call(engine, records.mismatches, engine, market, kind, open_only, since, limit)


@router.get("/api/v1/reconcile/{market}/held")
async def held(market: str, scenes: Scenes, engine: EngineDep,
               _: Principal = Depends(require_role("curator"))) -> list[dict]:
    market_or_404(scenes, market)
    rows = await db.call(engine, batches.open_held, engine, market)
    return [r.model_dump() for r in rows]


class Decision(BaseModel):
    """Why (optional for the API; the studio asks for it when rejecting)."""

    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(None, max_length=500)


async def _decide(engine: Engine, reconciler: Reconciler, market: str, ids: list[int],
                  decision: str, principal: Principal, reason: str | None = None) -> dict:
    if decision not in ("approve", "reject"):
        raise HTTPException(404, f"unknown decision {decision!r} (approve or reject)")
    try:
        result = await db.call(engine, batches.decide, engine, market, ids,
                               decision == "approve", principal.actor,
                               (reason or "").strip() or None)
    except batches.HeldNotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except batches.SelfApproval as exc:  # four eyes: the requester cannot approve
        raise HTTPException(403, str(exc)) from None
    await reconciler.feed_changed(market, result)
    return result.response


@router.post("/api/v1/reconcile/{market}/held/{held_id}/{decision}")
async def decide_one(market: str, held_id: Annotated[int, Path(ge=0, le=MAX_DB_INT)],
                     decision: str, scenes: Scenes, engine: EngineDep,
                     reconciler: ReconcilerDep, body: Decision | None = Body(None),
                     principal: Principal = Depends(require_role("curator"))) -> dict:
    """Approve (apply) or reject (drop) one held change; an optional JSON body
    `{"reason": "..."}` is kept in the audit entry."""
    market_or_404(scenes, market)
    return await _decide(engine, reconciler, market, [held_id], decision, principal,
                         body.reason if body else None)


@router.post("/api/v1/reconcile/{market}/batches/{batch_id}/{decision}")
async def decide_batch(market: str, batch_id: Annotated[int, Path(ge=0, le=MAX_DB_INT)],
                       decision: str, scenes: Scenes, engine: EngineDep,
                       reconciler: ReconcilerDep, body: Decision | None = Body(None),
                       principal: Principal = Depends(require_role("curator"))) -> dict:
    """Approve or reject every open held change of one batch (a tripped circuit breaker)."""
    market_or_404(scenes, market)
    ids = await db.call(engine, batches.held_ids_of_batch, engine, market, batch_id)
    if not ids:
        raise HTTPException(404, f"batch {batch_id} has no open held changes")
    return await _decide(engine, reconciler, market, ids, decision, principal,
                         body.reason if body else None)


class DrillRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seed: int | None = None
    displays: int | None = Field(None, ge=1, le=100_000)


@router.post("/api/v1/reconcile/{market}/drill")
async def drill(market: str, scenes: Scenes, engine: EngineDep, reconciler: ReconcilerDep,
                body: DrillRequest = Body(DrillRequest()),
                principal: Principal = Depends(require_role("admin"))) -> dict:
    """The glitch drill: scramble some displays; the reconciler finds and repairs them."""
    market_or_404(scenes, market)
    scrambled = await scramble(scenes, reconciler.guard, market, body.seed, body.displays)
    await db.call(engine, records.note_drill, engine, principal.actor, market, body.seed, scrambled)
    return {"market": market, "scrambled": scrambled}


@router.post("/api/v1/reconcile/{market}/sweep")
async def sweep(market: str, scenes: Scenes, reconciler: ReconcilerDep,
                _: Principal = Depends(require_role("curator"))) -> dict:
    """Run a full sweep of the market now."""
    market_or_404(scenes, market)
    return await reconciler.sweep(market)


# ---- audit chain (staff) ----------------------------------------------------------------

@router.get("/api/v1/markets/{market}/audit/verify", tags=["verifiable history"])
async def audit_verify(market: str, scenes: Scenes, engine: EngineDep,
                       _: Principal = Depends(require_role("curator"))) -> dict:
    """Check the hash-chained audit log (every entry's hash and link, the public
    histories it records, the heads this server signed), as `holobazaar audit verify`
    does on the server: `ok`, and one line per problem."""
    market_or_404(scenes, market)
    return await db.call(engine, records.verify_chain, engine)


@router.get("/api/v1/markets/{market}/audit/export", tags=["verifiable history"],
            response_class=StreamingResponse, responses={200: {
                "description": "JSON Lines, one audit entry per line.",
                "content": {"application/x-ndjson": {"schema": {"type": "string"}}}}})
async def audit_export(market: str, scenes: Scenes, engine: EngineDep,
                       since: datetime | None = None,
                       _: Principal = Depends(require_role("curator"))) -> StreamingResponse:
    """The market's audit entries as JSON Lines (each with its hash and prev_hash), as
    `holobazaar audit export` writes them; a download."""
    market_or_404(scenes, market)
    stamp = batches._now().strftime("%Y%m%dT%H%M%SZ")
    lines = iterate_in_threadpool(records.export_lines(engine, since, market))
    return StreamingResponse(lines, media_type="application/x-ndjson",
                             headers={"Content-Disposition": f'attachment; filename="audit-'
                                      f'{market}-{stamp}.jsonl"', "Cache-Control": "no-store"})


__all__ = ["HeldChange", "router"]
