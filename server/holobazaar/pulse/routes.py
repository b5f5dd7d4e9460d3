"""Pulse API: the live picture, the day's time series and the CSV export (curators), and
the held text feedback (curators moderate it)."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from pydantic import BaseModel, ConfigDict
from starlette.responses import Response

from holobazaar import db
from holobazaar.accounts.dependencies import require_role
from holobazaar.accounts.models import Principal
from holobazaar.pulse import database
from holobazaar.pulse.aggregator import DWELL_BUCKETS, KINDS, day_bounds
from holobazaar.pulse.dependencies import Pulse
from holobazaar.pulse.service import PulseService
from holobazaar.validation import MAX_DB_INT

router = APIRouter(tags=["pulse"])

CSV_COLUMNS = ["minute_utc", "scope", "scope_id", "devices", *KINDS, "reactions",
               "dwell_reports", "dwell_median_s", "mood"]
Scope = Literal["market", "zone", "display", "recipe"]
MAX_EXPORT_DAYS = 31


def _service(service: PulseService, market: str) -> PulseService:
    if service.scenes.market(market) is None:
        raise HTTPException(404, f"no market {market!r}")
    return service


def _day(service, market: str, day: date | None) -> tuple[datetime, datetime]:
    pulse = service.market_pulse(market)
    return day_bounds(day or pulse.local_day(service.clock()), pulse.tz)


@router.get("/api/v1/pulse/{market}")
def live(pulse: Pulse, market: str) -> dict:
    """The current k-anonymous picture (what `market/<m>/pulse` streams)."""
    return _service(pulse, market).state(market)


def series_points(rows) -> list[dict]:
    return [{"minute": r.minute.isoformat(), "scope": r.scope, "scope_id": r.scope_id,
             "devices": r.devices, "counts": {k: getattr(r, k) for k in KINDS},
             "dwell_median": r.dwell_median, "mood": r.mood} for r in rows]


@router.get("/api/v1/pulse/{market}/series")
async def series(
    pulse: Pulse, market: str,
    _: Annotated[Principal, Depends(require_role("curator"))],
    scope: Scope = "market", id: Annotated[str | None, Query(max_length=64)] = None,
    day: date | None = None,
) -> dict:
    """Per-minute figures of one scope for a day (the market's local day; today by
    default). Minutes with fewer than k distinct devices are left out."""
    service = _service(pulse, market)
    since, until = _day(service, market, day)
    scope_id = market if scope == "market" else id
    if scope_id is None:
        raise HTTPException(422, f"id: which {scope}? (required when scope is {scope})")
    rows = await db.call(service.engine, database.minutes, service.engine, market, since, until,
                         service.settings.k, scope, scope_id)
    return {"market": market, "scope": scope, "id": scope_id, "day": since.date().isoformat(),
            "k": service.settings.k, "points": series_points(rows)}


@router.get("/api/v1/pulse/{market}/export.csv", response_class=Response,
            responses={200: {"content": {"text/csv": {}}}})
async def export_csv(
    pulse: Pulse, market: str,
    _: Annotated[Principal, Depends(require_role("curator"))],
    since: date | None = None, until: date | None = None,
) -> Response:
    """Every stored minute with at least k distinct devices, for days since..until
    (inclusive, the market's local days; default today). Columns: docs/pulse.md."""
    service = _service(pulse, market)
    first = _day(service, market, since)[0]
    last = _day(service, market, until or since)[1]
    if last <= first:
        raise HTTPException(422, "until: must not be before since")
    if last - first > timedelta(days=MAX_EXPORT_DAYS + 1):
        raise HTTPException(422, f"since/until: at most {MAX_EXPORT_DAYS} days per export")
    rows = await db.call(service.engine, database.minutes, service.engine, market, first, last,
                         service.settings.k)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in rows:
        counts = [getattr(r, k) for k in KINDS]
        hist = [int(v) for v in r.dwell_hist.split(",")] if r.dwell_hist else []
        writer.writerow([r.minute.strftime("%Y-%m-%dT%H:%M:%SZ"), r.scope, r.scope_id,
                         r.devices, *counts, sum(counts), sum(hist),
                         "" if r.dwell_median is None else r.dwell_median, r.mood])
    name = f"pulse-{market}-{first.date().isoformat()}.csv"
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"',
                             "Cache-Control": "no-store"})


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Literal["approved", "rejected"]


@router.get("/api/v1/pulse/{market}/feedback")
async def feedback(
    pulse: Pulse, market: str,
    _: Annotated[Principal, Depends(require_role("curator"))],
    status: Literal["held", "approved", "rejected"] | None = "held",
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[dict]:
    service = _service(pulse, market)
    rows = await db.call(service.engine, database.feedback, service.engine, market, status, limit)
    return [{"id": r.id, "display": r.display, "kind": r.kind, "text": r.text,
             "flags": r.flags, "status": r.status, "created_at": r.created_at.isoformat()}
            for r in rows]


@router.post("/api/v1/pulse/{market}/feedback/{item_id}")
async def decide(
    pulse: Pulse, market: str, item_id: Annotated[int, Path(ge=0, le=MAX_DB_INT)],
    decision: Decision,
    who: Annotated[Principal, Depends(require_role("curator"))],
) -> dict:
    """The same decision as `POST /api/v1/markets/{m}/moderation/note/{id}/approve`."""
    service = _service(pulse, market)
    try:
        row = await db.call(service.engine, database.decide_feedback, service.engine, market,
                            item_id, decision.status, who.actor)
    except database.AlreadyDecided as exc:
        raise HTTPException(409, str(exc)) from None
    if row is None:
        raise HTTPException(404, f"no feedback {item_id} in market {market!r}")
    return {"id": row.id, "status": row.status}


__all__ = ["CSV_COLUMNS", "DWELL_BUCKETS", "router"]
