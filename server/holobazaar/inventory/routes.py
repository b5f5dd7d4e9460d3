"""Inventory API: read items, change one (the change reaches displays through the hub)."""

from __future__ import annotations

from decimal import Decimal

from fastapi import APIRouter, Depends, HTTPException, Request

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


@router.patch("/{sku}", response_model=ItemOut)
async def update_item(market: str, sku: str, change: ItemUpdate, request: Request,
                      scenes: SceneService = Depends(get_scenes),
                      principal: Principal = Depends(require_role("curator"))) -> ItemOut:
    if scenes.market(market) is None:
        raise HTTPException(404, f"no market {market!r}")
    try:
        facts = await db.call(scenes.engine, service.update_item, scenes.engine, market, sku,
                              change)
    except service.ItemNotFound as exc:
        raise HTTPException(404, str(exc)) from None
    # Through the reconciler, so a held or unverified item keeps its notice.
    await request.app.state.reconciler.feed_changed(market, BatchResult({}, applied=[facts]))
    return _out(facts)
