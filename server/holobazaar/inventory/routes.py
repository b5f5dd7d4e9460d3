"""Inventory API: read items, change one (the change reaches displays through the hub)."""

from __future__ import annotations

from decimal import Decimal

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse

from holobazaar import db
from holobazaar.accounts.dependencies import require_role
from holobazaar.accounts.models import Principal
from holobazaar.inventory import service
from holobazaar.inventory.models import ItemOut, ItemUpdate
from holobazaar.inventory.truth import BatchResult
from holobazaar.scenes.compositor import ItemFacts
from holobazaar.scenes.service import SceneService

router = APIRouter(prefix="/api/v1/markets/{market}/items", tags=["inventory"])


def get_scenes(request: Request) -> SceneService:
    return request.app.state.scenes


def _out(facts: ItemFacts) -> ItemOut:
    state = facts.as_state()
    state["price"] = str(facts.price.quantize(Decimal("0.01")))  # the truth, not the notice
    state.pop("notice", None)
    state.pop("verified", None)
    return ItemOut(**state)


@router.get("", response_model=list[ItemOut])
def list_items(market: str, scenes: SceneService = Depends(get_scenes)) -> list[ItemOut]:
    if scenes.market(market) is None:
        raise HTTPException(404, f"no market {market!r}")
    return [_out(f) for _, f in sorted(scenes.items.get(market, {}).items())]


def _pending_body(market: str, pending: service.ApprovalPending) -> dict:
    held = f"/api/v1/reconcile/{market}/held/{pending.held_id}"
    return {"status": "pending", "detail": str(pending), "held": pending.held_id,
            "requested_by": pending.requested_by, "superseded": pending.superseded,
            "change": pending.check.as_json(), "item": _out(pending.current).model_dump(),
            "approve": f"{held}/approve", "reject": f"{held}/reject"}


@router.patch("/{sku}", response_model=ItemOut, responses={
    202: {"description": "A `four_eyes` market: the confirmed change waits for a second "
                         "curator (`status: pending`, the held change's id and routes)."},
    409: {"description": "A price change beyond HOLOBAZAAR_HOLD_PRICE_CHANGE without "
                         "`\"confirm\": true`: `change` names old, new, percent and "
                         "threshold; nothing was changed."}})
async def update_item(market: str, sku: str, change: ItemUpdate, request: Request,
                      scenes: SceneService = Depends(get_scenes),
                      principal: Principal = Depends(require_role("curator"))):
    """Change one item (a curator's manual change), under the feed's hold policy
    (docs/inventory.md, "Manual changes")."""
    found = scenes.market(market)
    if found is None:
        raise HTTPException(404, f"no market {market!r}")
    settings = request.app.state.settings
    four_eyes = found.market.four_eyes
    try:
        facts = await db.call(scenes.engine, service.update_item, scenes.engine, market, sku,
                              change, actor=principal.actor,
                              hold_price_change=settings.hold_price_change,
                              four_eyes=four_eyes)
    except service.ItemNotFound as exc:
        raise HTTPException(404, str(exc)) from None
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
    await request.app.state.reconciler.feed_changed(market, BatchResult({}, applied=[facts]))
    return _out(facts)
