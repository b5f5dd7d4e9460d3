"""Studio section: inventory, /studio/<market>/inventory.

Every item with price, unit, stock, producer, source and last verified time; search and
filters in the page; inline edit of price and stock through the inventory API (PATCH
/api/v1/markets/{m}/items/{sku} with `If-Match`, the hold policy's 409 confirm step and
the four-eyes 202); add and retire items (forms here, validated on the server, the same
service as POST and DELETE on the API); file import through POST .../items/import (check,
then apply all or nothing, with progress); the feed's health and secret rotation (admin).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError
from sqlmodel import col, select
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from holobazaar import db
from holobazaar.db import as_utc, session_scope
from holobazaar.inventory import batches, manage, service
from holobazaar.inventory.batches import BatchResult
from holobazaar.inventory.models import ItemCreate
from holobazaar.inventory.tables import FOUR_EYES, FeedBatch, FeedConfig
from holobazaar.scenes.dependencies import market_or_404
from holobazaar.web.services import services
from holobazaar.web.studio.shell import (
    NO_STORE,
    StudioPage,
    field_errors,
    first,
    open_page,
    posted,
)

router = APIRouter(include_in_schema=False)

ADD_FIELDS = ("sku", "name", "price", "unit", "stock", "farm")
PAGE_ROWS = 300  # rows a page lists; the search narrows a larger market on the server
FOLLOW_MS = 8000  # how often an open page re-reads its rows
STATUSES = ("in_stock", "low", "sold_out", "held", "unverified")
FRIENDLY = {
    "sku": "Use 1-64 letters, digits, '.', '_' or '-' (no spaces), starting with a letter "
           "or digit.",
    "price": "Enter a price of 0 or more, such as 2.50 (at most 4 decimals).",
    "stock": "Enter a whole number of 0 or more, or leave it empty.",
    "name": "Enter a name (at most 120 characters).",
    "unit": "Enter a unit such as kg, each or bunch (at most 20 characters).",
    "farm": "Choose one of the market's producers.",
}


def _ago(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "never"
    seconds = max(0, int((now - moment).total_seconds()))
    if seconds < 60:
        return f"{seconds} s ago"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} d ago"


def _feed(engine: Any, market: str) -> tuple[FeedConfig | None, FeedBatch | None]:
    with session_scope(engine) as session:
        feed = session.get(FeedConfig, market)
        batch = session.exec(select(FeedBatch).where(FeedBatch.market == market)
                             .order_by(col(FeedBatch.id).desc()).limit(1)).first()
        if feed is not None:
            session.expunge(feed)
        if batch is not None:
            session.expunge(batch)
        return feed, batch


def _held_by_sku(engine: Any, market: str) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for held in batches.open_held(engine, market):
        new = json.loads(held.new)
        facts = new.get("facts") or {}
        out.setdefault(held.sku, []).append({
            "id": held.id, "four_eyes": held.reason == FOUR_EYES, "reason": held.reason,
            "requested_by": held.requested_by, "price": facts.get("price"),
            "stock": facts.get("stock"), "fields": new.get("fields")})
    return out


def farm_scope(page: StudioPage) -> tuple[bool, str | None]:
    """(scoped, farm): curators and admins see every item (False, None); anyone else who
    may open the section (a grower) sees only their own farm's items, and nothing when
    their farm is not known here."""
    if page.allows("curator"):
        return False, None
    farm_of = getattr(page.principal, "farm_of", None)
    farm = farm_of(page.market) if callable(farm_of) else getattr(page.principal, "farm", None)
    return True, farm if isinstance(farm, str) and farm else None


async def _context(page: StudioPage) -> dict[str, Any]:
    request, market = page.request, page.market
    engine = services(request).engine
    scenes = services(request).scenes
    content = market_or_404(scenes, market)
    farms = {f.id: f.name for f in content.market.farms}
    held = await db.call(engine, _held_by_sku, engine, market)
    q = request.query_params
    status = q.get("status") if q.get("status") in STATUSES else None
    farm = q.get("farm") if q.get("farm") in (*farms, "-") else None
    sources = await db.call(engine, service.item_sources, engine, market)
    source = q.get("source") if q.get("source") in sources else None
    stale = market in services(request).reconciler.stale
    scoped, own_farm = farm_scope(page)
    if scoped:  # a grower: their own farm only, whatever the filter asks
        farm = own_farm or "(no farm known)"
    where = service.ItemFilter(
        text=q.get("q", "")[:100].strip(),
        status=status if status in ("in_stock", "low", "sold_out") else None,
        farm=farm, source=source,
        skus=frozenset(held) if status == "held" else
        frozenset() if status == "unverified" and not stale else None)
    stored, total = await db.call(engine, service.stored_items, engine, market, where, PAGE_ROWS)
    feed, batch = await db.call(engine, _feed, engine, market)
    summary = await services(request).reconciler.summary(market)
    now = datetime.now(UTC)
    live = scenes.items.get(market, {})
    rows = []
    for item in stored:
        f = item.facts
        shown = live.get(f.sku)
        holds = held.get(f.sku, [])
        verified_at = item.source_timestamp or item.updated_at
        rows.append({
            "sku": f.sku, "name": f.name, "price": service.amount_text(service.price_of(f)),
            "currency": f.currency, "unit": f.unit, "stock": f.stock, "status": f.status,
            "farm": f.farm, "farm_name": farms.get(f.farm or "", f.farm or ""),
            "source": item.source, "version": item.version,
            "verified_at": verified_at, "verified_ago": _ago(verified_at, now),
            "unverified": shown is not None and not shown.verified,
            "feed_held": [h for h in holds if not h["four_eyes"]],
            "waiting": [h for h in holds if h["four_eyes"]],
        })
    last_feed = as_utc(feed.last_feed_at) if feed else None
    batch_report = json.loads(batch.response) if batch else None
    stale_after = services(request).settings.inventory_stale_after
    push = bool(feed and feed.secret)
    pull = bool(feed and feed.pull_url)
    lag = summary.get("feed_lag_seconds")
    feed_state = ("none" if not (push or pull) else
                  "stale" if lag is not None and lag > stale_after else "ok")
    return {
        "items": rows, "farms": farms, "sources": sources, "total": total,
        "page_rows": PAGE_ROWS, "follow_ms": FOLLOW_MS,
        "filter": {"q": where.text, "status": status or "", "farm": farm or "",
                   "source": source or ""},
        "can_edit": page.allows("curator"), "is_admin": page.allows("admin"),
        "four_eyes": content.market.four_eyes, "currency": content.market.market.currency,
        "threshold": services(request).settings.hold_price_change,
        "feed": {"push": push, "pull": pull, "pull_url": feed.pull_url if feed else None,
                 "pull_format": feed.pull_format if feed else None,
                 "pull_interval": feed.pull_interval if feed else None,
                 "last_at": last_feed, "last_ago": _ago(last_feed, now),
                 "state": feed_state, "stale_after": stale_after,
                 "lag": lag, "batch": batch, "batch_report": batch_report,
                 "batch_ago": _ago(as_utc(batch.received_at), now) if batch else None},
        "summary": summary,
        "held_count": sum(len(h) for h in held.values()),
    }


async def _render(page: StudioPage, status: int = 200, **extra: Any) -> Response:
    context = await _context(page)
    context.update(extra)
    context.setdefault("form", {"unit": "each"})
    context.setdefault("errors", {})
    q = page.request.query_params
    if "added" in q:
        context.setdefault("notice", f"Added {q['added'][:64]}.")
    if "imported" in q and q["imported"].isdigit():
        context.setdefault("notice", f"Imported {int(q['imported']):,} rows.")
    if "retired" in q:
        context.setdefault("notice", f"Retired {q['retired'][:64]}: it is no longer in the "
                                     "market's inventory.")
    return page.render("studio/inventory.html", context, status=status)


@router.get("/studio/{market}/inventory", response_class=HTMLResponse)
async def inventory(request: Request, market: str, part: str | None = None) -> Response:
    page = await open_page(request, market, "inventory")
    if isinstance(page, Response):
        return page
    if part == "rows":  # the listed items as they are now: the page keeps itself current
        context = await _context(page)
        return JSONResponse({"total": context["total"], "items": {r["sku"]: {
            "price": r["price"], "currency": r["currency"], "unit": r["unit"],
            "stock": r["stock"], "status": r["status"], "version": r["version"],
            "source": r["source"], "held": bool(r["feed_held"] or r["waiting"])}
            for r in context["items"]}}, headers=NO_STORE)
    return await _render(page)


@router.post("/studio/{market}/inventory/items")
async def add_item(request: Request, market: str) -> Response:
    checked = await posted(request, market, "inventory", roles=("curator", "admin"))
    if isinstance(checked, Response):
        return checked
    page, form = checked
    values = {name: first(form, name).strip() for name in ADD_FIELDS}
    farms = {f.id for f in market_or_404(services(request).scenes, market).market.farms}
    data: dict[str, Any] = {k: v for k, v in values.items() if v != ""}
    errors: dict[str, str] = {}
    if data.get("farm") and data["farm"] not in farms:
        errors["farm"] = FRIENDLY["farm"]
    if "unit" not in data:
        data["unit"] = "each"
    try:
        item = ItemCreate.model_validate(data)
    except ValidationError as exc:
        errors = {**field_errors(exc, FRIENDLY), **errors}
    if errors:
        return await _render(page, 422, form=values, errors=errors, open_add=True)
    scenes = services(request).scenes
    currency = market_or_404(scenes, market).market.market.currency
    try:
        facts = await db.call(scenes.engine, manage.create_item, scenes.engine, market, item,
                              currency, actor=page.principal.actor)
    except manage.ItemExists:
        return await _render(page, 409, form=values, open_add=True, errors={
            "sku": f"There is already an item {item.sku}: choose another SKU or edit it "
                   "in the list."})
    await services(request).reconciler.feed_changed(market, BatchResult({}, applied=[facts]))
    return RedirectResponse(f"/studio/{market}/inventory?added={item.sku}#item-{item.sku}",
                            status_code=303, headers=NO_STORE)


@router.post("/studio/{market}/inventory/items/{sku}/retire")
async def retire_item(request: Request, market: str, sku: str) -> Response:
    checked = await posted(request, market, "inventory", roles=("curator", "admin"))
    if isinstance(checked, Response):
        return checked
    page, form = checked
    scenes = services(request).scenes
    try:
        await db.call(scenes.engine, manage.retire_item, scenes.engine, market, sku[:64],
                      actor=page.principal.actor,
                      expected_version=first(form, "version")[:80] or None)
    except service.ItemNotFound:
        return await _render(page, 404, alert=f"There is no item {sku[:64]} (any more).")
    except service.StaleVersion as exc:
        return await _render(page, 409, alert=(
            f"{sku[:64]} was changed by someone else after you opened this page (now "
            f"{service.amount_text(service.price_of(exc.current))} {exc.current.currency}, stock "
            f"{exc.current.stock if exc.current.stock is not None else '—'}). Nothing was "
            "retired: look at it again below and retire it if you still mean to."))
    await services(request).reconciler.feed_changed(
        market, BatchResult({}, removed=[sku], released=[sku], bumped=True))
    return RedirectResponse(f"/studio/{market}/inventory?retired={sku[:64]}", status_code=303,
                            headers=NO_STORE)
