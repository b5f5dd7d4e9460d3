"""Inventory API: read items, add, change and retire one (changes reach displays through
the hub), and import a file of items (checked first, applied all or nothing). Items are
read from the database, not from the scene service's copy."""

from __future__ import annotations

import asyncio
import json
import tempfile
from decimal import Decimal
from typing import Literal

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse

from holobazaar import db
from holobazaar.accounts.dependencies import WriteRecord, require_role, take_write_record
from holobazaar.accounts.models import Principal
from holobazaar.inventory import imports, manage, service
from holobazaar.inventory.batches import BatchResult
from holobazaar.inventory.dependencies import ReconcilerDep, Scenes, SettingsDep, market_or_404
from holobazaar.inventory.models import ItemCreate, ItemOut, ItemUpdate
from holobazaar.scenes.inputs import ItemFacts
from holobazaar.scenes.service import SceneService

router = APIRouter(prefix="/api/v1/markets/{market}/items", tags=["inventory"])
SPOOL_BYTES = 1 << 20  # an upload beyond this goes to a temporary file, not memory
NDJSON = "application/x-ndjson"


def _out(facts: ItemFacts) -> ItemOut:
    state = facts.as_state()
    state["price"] = str(service.price_of(facts).quantize(Decimal("0.01")))  # not the notice
    state.pop("notice", None)
    state.pop("verified", None)
    return ItemOut(**state)


@router.get("", response_model=list[ItemOut])
def list_items(market: str, scenes: Scenes) -> list[ItemOut]:
    if scenes.market(market) is None:
        raise HTTPException(404, f"no market {market!r}")
    return [_out(f) for _, f in sorted(service.load_items(scenes.engine, market).items())]


def _pending_body(market: str, pending: service.ApprovalPending) -> dict:
    held = f"/api/v1/reconcile/{market}/held/{pending.held_id}"
    return {"status": "pending", "detail": str(pending), "held": pending.held_id,
            "requested_by": pending.requested_by, "superseded": pending.superseded,
            "change": pending.check.as_json(), "item": _out(pending.current).model_dump(),
            "approve": f"{held}/approve", "reject": f"{held}/reject"}


def _stale(market: str, exc: service.StaleVersion) -> JSONResponse:
    return JSONResponse(status_code=412, headers={"ETag": f'"{exc.version}"'}, content={
        "detail": str(exc), "code": "stale_version", "version": exc.version,
        "item": _out(exc.current).model_dump()})


GROWER_FIELDS = frozenset({"stock", "status", "confirm"})


async def _grower_guard(principal: Principal, scenes: SceneService, market: str, sku: str,
                        change: ItemUpdate | None = None,
                        stored: service.StoredItem | None = None) -> None:
    """A grower (not a curator of the market) touches only their own farm's items, and
    only stock and status, plus price when the market sets `growers_set_prices`: 403
    otherwise (an unknown SKU is 403 too, so a grower learns nothing of other farms).
    `stored`: the item as already read (else it is read here)."""
    if principal.allows("curator", market):
        return
    if stored is None:
        stored = await db.call(scenes.engine, service.stored_item, scenes.engine, market, sku)
    facts = stored.facts if stored is not None else None
    if facts is None or not principal.may_touch_farm(market, facts.farm):
        raise HTTPException(403, "this item is not your farm's")
    if change is not None:
        allowed = set(GROWER_FIELDS)
        found = scenes.market(market)
        if found is not None and found.market.growers_set_prices:
            allowed.add("price")
        refused = sorted(change.model_fields_set - allowed)
        if refused:
            raise HTTPException(403, f"a grower may not change {', '.join(refused)} here")


@router.get("/{sku}", response_model=ItemOut)
async def get_item(market: str, sku: str, scenes: Scenes,
                   principal: Principal = Depends(require_role("curator", "grower"))
                   ) -> JSONResponse:
    """One item with its version in the `ETag` header: send it back as `If-Match` with a
    change so a change made meanwhile by someone else is not overwritten (412). A grower
    reads only their own farm's items (403 otherwise)."""
    market_or_404(scenes, market)
    stored = await db.call(scenes.engine, service.stored_item, scenes.engine, market, sku)
    await _grower_guard(principal, scenes, market, sku, stored=stored)
    if stored is None:
        raise HTTPException(404, f"no item {sku!r} in market {market!r}")
    return JSONResponse(_out(stored.facts).model_dump(),
                        headers={"ETag": f'"{stored.version}"'})


@router.post("", response_model=ItemOut, status_code=201, responses={
    409: {"description": "The market already has an item with this SKU."}})
async def create_item(market: str, item: ItemCreate, scenes: Scenes,
                      reconciler: ReconcilerDep,
                      principal: Principal = Depends(require_role("curator"))):
    """Add an item (a curator's manual change; the feed adds items by sending them)."""
    found = market_or_404(scenes, market)
    try:
        facts = await db.call(scenes.engine, manage.create_item, scenes.engine, market, item,
                              found.market.market.currency, actor=principal.actor)
    except manage.ItemExists as exc:
        raise HTTPException(409, str(exc)) from None
    await reconciler.feed_changed(market, BatchResult({}, applied=[facts]))
    version = await db.call(scenes.engine, service.version_of, scenes.engine, market, item.sku)
    return JSONResponse(_out(facts).model_dump(), status_code=201,
                        headers={"ETag": f'"{version}"'})


@router.delete("/{sku}", responses={
    412: {"description": "`If-Match` names an older version: the item changed since."}})
async def retire_item(market: str, sku: str, scenes: Scenes, reconciler: ReconcilerDep,
                      if_match: str | None = Header(None, max_length=80),
                      principal: Principal = Depends(require_role("curator"))):
    """Retire an item: it leaves the market's inventory (displays bound to it stop
    showing it; its public history records the removal). Open held changes of it close."""
    market_or_404(scenes, market)
    try:
        old = await db.call(scenes.engine, manage.retire_item, scenes.engine, market, sku,
                            actor=principal.actor, expected_version=if_match)
    except service.ItemNotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except service.StaleVersion as exc:
        return _stale(market, exc)
    await reconciler.feed_changed(
        market, BatchResult({}, removed=[sku], released=[sku], bumped=True))
    return {"retired": sku, "item": _out(old).model_dump()}


@router.patch("/{sku}", response_model=ItemOut, responses={
    412: {"description": "`If-Match` names an older version of the item: someone changed "
                         "it since it was read (`item` and `version` are the current ones); "
                         "nothing was changed."},
    202: {"description": "A `four_eyes` market: the confirmed change waits for a second "
                         "curator (`status: pending`, the held change's id and routes)."},
    403: {"description": "Not a curator of the market, or a grower and the item is not "
                         "their farm's, or a field a grower may not change."},
    409: {"description": "A price change beyond HOLOBAZAAR_HOLD_PRICE_CHANGE without "
                         "`\"confirm\": true`: `change` names old, new, percent and "
                         "threshold; nothing was changed."}})
async def update_item(market: str, sku: str, change: ItemUpdate, request: Request,
                      scenes: Scenes, reconciler: ReconcilerDep, settings: SettingsDep,
                      if_match: str | None = Header(None, max_length=80),
                      principal: Principal = Depends(
                          require_role("curator", "grower", defer_audit=True))):
    """Change one item (a curator's manual change), under the feed's hold policy
    (docs/inventory.md, "Manual changes"). A grower changes only their own farm's items,
    stock and status only (and price when the market's `growers_set_prices` is on): 403
    otherwise. A token's write record goes in the change's own transaction."""
    record = take_write_record(request)
    try:
        return await _update_item(market, sku, change, scenes, reconciler, settings,
                                  if_match, principal, record)
    finally:
        if record is not None:
            await record.settle(scenes.engine)  # unless the change's transaction had it


async def _update_item(market: str, sku: str, change: ItemUpdate, scenes: SceneService,
                       reconciler, settings, if_match: str | None, principal: Principal,
                       record: WriteRecord | None):
    found = scenes.market(market)
    if found is None:
        raise HTTPException(404, f"no market {market!r}")
    await _grower_guard(principal, scenes, market, sku, change)
    four_eyes = found.market.four_eyes
    try:
        facts, version = await db.call(
            scenes.engine, service.change_item, scenes.engine, market, sku, change,
            actor=principal.actor, hold_price_change=settings.hold_price_change,
            four_eyes=four_eyes, expected_version=if_match,
            also=record.append if record is not None else None)
    except service.ItemNotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except service.StaleVersion as exc:
        return _stale(market, exc)
    except service.ConfirmationRequired as exc:
        return JSONResponse(status_code=409, content={
            "detail": f"{exc}: send the change again with \"confirm\": true"
                      + (" (this market then needs a second curator's approval)"
                         if four_eyes else ""),
            "code": "confirmation_required", "change": exc.check.as_json(),
            "four_eyes": four_eyes})
    except service.ApprovalPending as pending:
        # Nothing visible changed: the stored item stands until another curator approves.
        return JSONResponse(status_code=202, content=_pending_body(market, pending))
    # Through the reconciler, so a held or unverified item keeps its notice.
    await reconciler.feed_changed(market, BatchResult({}, applied=[facts]))
    return JSONResponse(_out(facts).model_dump(), headers={"ETag": f'"{version}"'})




@router.post("/import", responses={
    200: {"content": {"application/json": {}, NDJSON: {"schema": {"type": "string"}}},
          "description": "The report: rows, new, updates, removals, bad rows (`errors`, "
                         "each with its `line`), large price changes (`large`) and whether "
                         "it was `applied`. With `Accept: application/x-ndjson`, progress "
                         "lines `{\"phase\", \"fraction\"}` first, then `{\"done\": true, "
                         "\"status\", \"report\"}`."},
    409: {"description": "Price changes beyond the hold policy without `confirm=true`: "
                         "nothing was applied."},
    422: {"description": "Bad rows (each listed with its line) or an unreadable file: "
                         "nothing was applied."}})
async def import_items(market: str, request: Request, scenes: Scenes,
                       reconciler: ReconcilerDep, settings: SettingsDep,
                       format: Literal["csv", "json"] = Query(
                           ..., description="The body's format (the feed's CSV or JSON)."),
                       dry_run: bool = Query(True, description="Only check: say what would "
                                             "change, write nothing."),
                       confirm: bool = Query(False, description="Confirm the price changes "
                                             "beyond the hold policy."),
                       principal: Principal = Depends(require_role("curator"))):
    """Import a file of items (the feed's CSV or JSON events) as the body: checked first
    (`dry_run`, the default), then applied all or nothing: one bad row and nothing is
    written. Read as a stream into a temporary file and applied in chunks in one
    transaction (docs/studio.md, "Inventory")."""
    found = market_or_404(scenes, market)
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115
    size = 0
    async for chunk in request.stream():
        spool.write(chunk)
        size += len(chunk)
    spool.seek(0)
    progress: dict = {"phase": "checking", "fraction": 0.0}

    def report(phase: str, fraction: float) -> None:
        progress.update(phase=phase, fraction=round(min(fraction, 1.0), 3))

    def work() -> tuple[int, dict]:
        try:
            if dry_run:
                result = imports.check(scenes.engine, market, spool, size, format,
                                       threshold=settings.hold_price_change,
                                       progress=report)
            else:
                result = imports.apply(scenes.engine, market, spool, size, format,
                                       threshold=settings.hold_price_change,
                                       currency=found.market.market.currency,
                                       confirm=confirm, four_eyes=found.market.four_eyes,
                                       actor=principal.actor, progress=report)
        except imports.ImportFormatError as exc:
            return 422, {"detail": str(exc), "code": "unreadable"}
        finally:
            spool.close()
        body = {**result.as_json(), "dry_run": dry_run, "four_eyes": found.market.four_eyes,
                "threshold": settings.hold_price_change}
        if result.error_count:
            return 422, {**body, "detail": f"{result.error_count} bad row(s): nothing was "
                         "applied", "code": "bad_rows"}
        if not dry_run and not result.applied:
            return 409, {**body, "code": "confirmation_required",
                         "detail": f"{result.large_count} price change(s) beyond the "
                         f"{settings.hold_price_change:g}% hold policy: send confirm=true"}
        return 200, body

    async def finish(status: int, body: dict) -> None:
        if status == 200 and body.get("applied"):
            await reconciler.resync(market)

    if NDJSON not in request.headers.get("accept", ""):
        status, body = await db.call(scenes.engine, work)
        await finish(status, body)
        return JSONResponse(body, status_code=status)

    async def stream():
        task = asyncio.ensure_future(db.call(scenes.engine, work))
        while not task.done():
            yield json.dumps(progress) + "\n"
            await asyncio.wait({task}, timeout=0.25)
        status, body = task.result()
        await finish(status, body)
        yield json.dumps({"done": True, "status": status, "report": body}) + "\n"

    return StreamingResponse(stream(), media_type=NDJSON, headers={"Cache-Control": "no-store"})
