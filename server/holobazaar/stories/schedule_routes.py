"""Scheduled publishing API (holobazaar.stories.scheduled): curators schedule a story or
recipe in review to publish at a time, or a published one to unpublish; list and cancel."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from holobazaar.accounts.models import Principal
from holobazaar.scenes import schedule as timing
from holobazaar.stories import scheduled
from holobazaar.stories.routes import _call, _engine, _market, curator

router = APIRouter(tags=["stories"])


class ScheduleBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: Literal["publish", "unpublish"] = "publish"
    at: str = Field(max_length=40, description="ISO 8601; without an offset, the market's "
                    "local time (e.g. 2026-12-24T18:00).")


def _routes(collection: str, kind: str) -> None:
    base = f"/api/v1/markets/{{market}}/{collection}/{{slug}}/schedule"

    @router.post(base, status_code=201, summary=f"Schedule a {kind} to publish or unpublish",
                 description="Publish: the document must be in review; exactly its current "
                 "(reviewed) revision publishes at `at`, even if it is edited later. 422 "
                 "for a time in the past; 409 for a document not in review.")
    async def create(request: Request, market: str, slug: str, body: ScheduleBody,
                     principal: Principal = Depends(curator)) -> dict[str, Any]:
        content = _market(request, market)
        tz = timing.zone(content.market.market.timezone)
        try:
            at = timing.parse_at(body.at, tz)
        except (ValueError, OverflowError):
            raise HTTPException(422, f"at: {body.at!r} is not an ISO 8601 date and time, "
                                "e.g. 2026-12-24T18:00") from None
        now: datetime = request.app.state.scenes.clock.now()
        try:
            row = await _call(scheduled.schedule, _engine(request), kind, slug, market,
                              body.action, at, principal.actor, now)
        except scheduled.PastTime as exc:
            raise HTTPException(422, str(exc)) from None
        return row.as_json()

    @router.get(base, summary=f"A {kind}'s schedules (pending, done, failed, cancelled)")
    async def listing(request: Request, market: str, slug: str,
                      principal: Principal = Depends(curator)) -> list[dict[str, Any]]:
        rows = await _call(scheduled.list_for, _engine(request), kind, slug, market)
        return [row.as_json() for row in rows]

    @router.delete(base + "/{schedule_id}", summary="Cancel a pending schedule")
    async def cancel(request: Request, market: str, slug: str, schedule_id: int,
                     principal: Principal = Depends(curator)) -> dict[str, Any]:
        row = await _call(scheduled.cancel, _engine(request), kind, slug, market,
                          schedule_id, principal.actor)
        return row.as_json()


_routes("stories", "story")
_routes("recipes", "recipe")
