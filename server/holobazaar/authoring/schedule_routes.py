"""Scheduled publishing of a display (holobazaar.scenes.scheduled_publish): curators of the
market schedule a draft document to publish at a time, list and cancel."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from holobazaar.accounts.models import Principal
from holobazaar.authoring.routes import _fail, curator
from holobazaar.scenes import authoring
from holobazaar.scenes import schedule as timing
from holobazaar.scenes import scheduled_publish as scheduled
from holobazaar.scenes.dependencies import scenes_dependency
from holobazaar.scenes.service import SceneService

router = APIRouter(prefix="/api/v1", tags=["scenes authoring"])
BASE = "/markets/{market}/displays/{display}/schedule"


class DisplaySchedule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    at: str = Field(max_length=40, description="ISO 8601; without an offset, the market's "
                    "local time (e.g. 2026-12-24T18:00).")
    document: dict[str, Any] = Field(description="The display's scene document to publish, "
                                     "as PUT .../source takes it; pinned as it is now.")


@router.post(BASE, status_code=201,
             summary="Schedule a display's draft document to publish at a time",
             description="If-Match: the etag of the source the draft was made from (428 "
             "without, 412 stale). The document is validated as a save validates it (422) "
             "and pinned: exactly it is written at `at`, even if the display is edited "
             "meanwhile (the schedule then reports `newer_version`). A time in the past is "
             "422. The revision is recorded with actor 'schedule: <who>'.")
async def create(request: Request, market: str, display: str, body: DisplaySchedule,
                 if_match: str | None = Header(None), who: Principal = Depends(curator),
                 scenes: SceneService = Depends(scenes_dependency)):
    found = scenes.market(market)
    if found is None:
        return _fail(authoring.AuthoringError(404, f"no market {market!r}"))
    try:
        at = timing.parse_at(body.at, timing.zone(found.market.market.timezone))
    except (ValueError, OverflowError):
        return _fail(authoring.AuthoringError(422, f"at: {body.at!r} is not an ISO 8601 "
                                              "date and time, e.g. 2026-12-24T18:00"))
    now: datetime = scenes.clock.now()
    try:
        row = scheduled.schedule(scenes, market, display, body.document, if_match, at,
                                 who.name, now)
    except scheduled.PastTime as exc:
        return _fail(authoring.AuthoringError(422, str(exc)))
    except authoring.AuthoringError as exc:
        return _fail(exc)
    return JSONResponse(row.as_json(row.base_etag), status_code=201)


@router.get(BASE, summary="A display's scheduled publishes (pending ones say whether the "
            "display has a newer version than their document was drafted from)")
def listing(market: str, display: str, _=Depends(curator),
            scenes: SceneService = Depends(scenes_dependency)):
    try:
        authoring.display_path(scenes, market, display)
    except authoring.AuthoringError as exc:
        return _fail(exc)
    return scheduled.listing(scenes, market, display)


@router.delete(BASE + "/{schedule_id}", summary="Cancel a pending scheduled publish")
def cancel(market: str, display: str, schedule_id: int, who: Principal = Depends(curator),
           scenes: SceneService = Depends(scenes_dependency)):
    try:
        return scheduled.cancel(scenes, market, display, schedule_id, who.name).as_json()
    except authoring.AuthoringError as exc:
        return _fail(exc)
