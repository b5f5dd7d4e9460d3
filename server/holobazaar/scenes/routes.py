"""Read-only scene API: markets, displays, display state, the display-state JSON Schema
(the scene files' schema includes show files: shows/routes.py serves it)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel

from holobazaar.canonical import state_hash
from holobazaar.channels import display_channel, market_channel, zone_channel
from holobazaar.scenes import schedule
from holobazaar.scenes.dependencies import scenes_dependency
from holobazaar.scenes.service import SceneService
from holobazaar.scenes.state import display_state_json_schema

router = APIRouter(prefix="/api/v1", tags=["scenes"])


class MarketSummary(BaseModel):
    id: str
    name: str
    description: str
    currency: str
    zones: list[str]
    displays: int
    channel: str


class DisplaySummary(BaseModel):
    id: str
    title: str
    zone: str
    farm: str | None
    anchor: str
    channel: str
    zone_channel: str


class DisplayState(BaseModel):
    channel: str
    epoch: str
    offset: int
    state_hash: str
    state: dict[str, Any]
    at: str | None = None  # a preview (?at=): the instant composed for; epoch "preview"


def _market_or_404(scenes: SceneService, market: str):
    found = scenes.market(market)
    if found is None:
        raise HTTPException(404, f"no market {market!r}")
    return found


@router.get("/markets", response_model=list[MarketSummary])
def list_markets(scenes: SceneService = Depends(scenes_dependency)) -> list[MarketSummary]:
    markets = scenes.content.markets.values() if scenes.content else []
    return [
        MarketSummary(id=m.id, name=m.market.market.name,
                      description=m.market.market.description,
                      currency=m.market.market.currency,
                      zones=[z.id for z in m.market.zones], displays=len(m.displays),
                      channel=market_channel(m.id))
        for m in markets
    ]


@router.get("/markets/{market}/displays", response_model=list[DisplaySummary])
def list_displays(market: str, scenes: SceneService = Depends(scenes_dependency)):
    found = _market_or_404(scenes, market)
    out = []
    for display in sorted(found.displays.values(), key=lambda d: d.id):
        _, _, state, _ = scenes.hub.snapshot(display_channel(market, display.id))
        out.append(DisplaySummary(
            id=display.id, title=state["display"]["title"], zone=display.zone,
            farm=display.farm, anchor=display.anchor.kind,
            channel=display_channel(market, display.id),
            zone_channel=zone_channel(market, display.zone)))
    return out


AT_HELP = ("Preview: compose the display as it will look at this moment (ISO 8601; "
           "without an offset, the market's local time, e.g. 2026-12-24T18:00): its "
           "schedule's variant and the market's opening hours then, today's data.")


@router.get("/displays/{market}/{display}/state", response_model=DisplayState)
def display_state(market: str, display: str, scenes: SceneService = Depends(scenes_dependency),
                  at: str | None = Query(None, max_length=40, description=AT_HELP)):
    found = _market_or_404(scenes, market)
    if display not in found.displays:
        raise HTTPException(404, f"no display {display!r} in market {market!r}")
    channel = display_channel(market, display)
    if at is not None:
        tz = schedule.zone(found.market.market.timezone)
        try:
            when = schedule.parse_at(at, tz)
        except (ValueError, OverflowError):
            raise HTTPException(422, f"at: {at!r} is not an ISO 8601 date and time, e.g. "
                                "2026-12-24T18:00") from None
        state, _ = scenes.compose_display(found, found.displays[display], at=when)
        return DisplayState(channel=channel, epoch="preview", offset=0,
                            state_hash=state_hash(state), state=state,
                            at=when.astimezone(tz).isoformat())
    epoch, offset, state, digest = scenes.hub.snapshot(channel)
    return DisplayState(channel=channel, epoch=epoch, offset=offset, state_hash=digest,
                        state=state)


@router.get("/schema/display-state")
def display_state_schema() -> dict:
    return display_state_json_schema()
