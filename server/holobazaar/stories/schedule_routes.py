"""Scheduled publishing API (holobazaar.stories.scheduled): curators schedule a story or
recipe in review to publish at a time, or a published one to unpublish; list and cancel."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from holobazaar import db
from holobazaar.accounts.models import Principal
from holobazaar.scenes import schedule as timing
from holobazaar.scenes.dependencies import market_or_404
from holobazaar.stories import scheduled
from holobazaar.stories.dependencies import EngineDep, Scenes
from holobazaar.stories.routes import StoryRoute, curator

router = APIRouter(tags=["stories"], route_class=StoryRoute)


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
    async def create(engine: EngineDep, scenes: Scenes, market: str, slug: str,
                     body: ScheduleBody,
                     principal: Principal = Depends(curator)) -> dict[str, Any]:
        content = market_or_404(scenes, market)
        tz = timing.zone(content.market.market.timezone)
        try:
            at = timing.parse_at(body.at, tz)
        except (ValueError, OverflowError):
            raise HTTPException(422, f"at: {body.at!r} is not an ISO 8601 date and time, "
                                "e.g. 2026-12-24T18:00") from None
        now: datetime = scenes.clock.now()
        try:
            row = await db.call(engine, scheduled.schedule, engine, kind, slug, market,
                                body.action, at, principal.actor, now)
        except scheduled.PastTime as exc:
            raise HTTPException(422, str(exc)) from None
        return row.as_json()

    @router.get(base, summary=f"A {kind}'s schedules (pending, done, failed, cancelled)")
    async def listing(engine: EngineDep, market: str, slug: str,
                      principal: Principal = Depends(curator)) -> list[dict[str, Any]]:
        rows = await db.call(engine, scheduled.list_for, engine, kind, slug, market)
        return [row.as_json() for row in rows]

    @router.delete(base + "/{schedule_id}", summary="Cancel a pending schedule")
    async def cancel(engine: EngineDep, market: str, slug: str, schedule_id: int,
                     principal: Principal = Depends(curator)) -> dict[str, Any]:
        row = await db.call(engine, scheduled.cancel, engine, kind, slug, market,
                            schedule_id, principal.actor)
        return row.as_json()


_routes("stories", "story")
_routes("recipes", "recipe")
