"""The public price-history page, /t/<market>: per item a small price chart (server-rendered
SVG) and when its price was last verified, and the market's signed chain head with what a
visitor needs to check it themselves (docs/inventory.md, "Verifiable price history")."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, HTTPException, Request
from sqlmodel import col, select
from starlette.responses import HTMLResponse

from holobazaar import db
from holobazaar.audit import heads
from holobazaar.audit.models import PublicRecord
from holobazaar.audit.routes import signed_head
from holobazaar.db import as_utc, session_scope
from holobazaar.scenes.templates import money, stock_label
from holobazaar.web.charts import line_chart
from holobazaar.web.i18n import templates as page_templates
from holobazaar.web.services import services

router = APIRouter(include_in_schema=False)
templates = page_templates()  # web/i18n.py: gettext, lang and dir
templates.env.globals.update(money=money, stock_label=stock_label)

RECENT = 20_000  # records read for the page (the API pages through all of them)
PER_ITEM = 60  # changes drawn per item


def _recent(engine, market: str) -> dict[str, list[PublicRecord]]:
    with session_scope(engine) as session:
        rows = session.exec(select(PublicRecord).where(PublicRecord.market == market)
                            .order_by(col(PublicRecord.seq).desc()).limit(RECENT))
        by_sku: dict[str, list[PublicRecord]] = defaultdict(list)
        for row in rows:
            if len(by_sku[row.sku]) < PER_ITEM:
                by_sku[row.sku].append(row)
    return {sku: rows[::-1] for sku, rows in by_sku.items()}


def _zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def _chart(records: list[PublicRecord], now: datetime):
    """A step line of the price (it holds until the next change), to now."""
    points: list[tuple[datetime, float]] = []
    for record in records:
        if record.price is None:
            continue
        at = as_utc(record.time).astimezone(now.tzinfo)
        if points:
            points.append((at, points[-1][1]))
        points.append((at, float(Decimal(record.price))))
    if not points:
        return None
    points.append((now, points[-1][1]))
    start = min(points[0][0], now - timedelta(minutes=1))  # the chart spans a minute or more
    return line_chart({"price": points}, start, now, width=320, height=96, gap=None)


@router.get("/t/{market}", response_class=HTMLResponse)
async def history_page(request: Request, market: str) -> HTMLResponse:
    scenes = services(request).scenes
    found = scenes.market(market)
    if found is None:
        return templates.TemplateResponse(request, "not_found.html", {
            "message": "There is no market with this address."}, status_code=404)
    engine = services(request).engine
    refused: str | None
    try:
        head: dict[str, Any] | None = await signed_head(engine, market)
    except HTTPException as exc:  # 503: the chain is behind a head signed before
        head, refused = None, str(exc.detail)
    else:
        refused = None
    recent = await db.call(engine, _recent, engine, market)  # up to RECENT rows
    zone = _zone(found.market.market.timezone)
    now = datetime.now(zone)
    items: list[dict[str, Any]] = []
    current = scenes.items.get(market, {})
    for sku in sorted(set(current) | set(recent),
                      key=lambda s: (current[s].name if s in current else s).lower()):
        facts = current.get(sku)
        records = recent.get(sku, [])
        last = records[-1] if records else None
        items.append({
            "sku": sku, "name": facts.name if facts else sku,
            "price": last.price if last else (facts.price if facts else None),
            "currency": (last.currency if last and last.currency else
                         facts.currency if facts else "EUR"),
            "unit": (last.unit if last and last.unit else facts.unit if facts else None),
            "status": last.status if last else (facts.status if facts else "removed"),
            "since": as_utc(last.time).astimezone(zone) if last else None,
            "seq": last.seq if last else None,
            "recorded": last is not None,
            "verified": bool(getattr(facts, "verified", True)) if facts else True,
            "chart": _chart(records, now),
            "changes": len(records),
        })
    base = str(request.base_url).rstrip("/")
    return templates.TemplateResponse(request, "history.html", {
        "market": found.market.market, "items": items, "head": head,
        "head_time": datetime.fromisoformat(head["time"]).astimezone(zone) if head else None,
        "zone": found.market.market.timezone, "refused": refused,
        "fingerprint": heads.fingerprint(head["key"]) if head else None, "base": base,
    }, headers={"Cache-Control": "no-cache"}, status_code=200 if head else 503)
