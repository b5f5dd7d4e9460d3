"""Studio section: what is scheduled in a market, /studio/<market>/schedule (issue #24).

Scheduled publishes of displays (DELETE /api/v1/markets/{m}/displays/{d}/schedule/{id}) and
of stories and recipes (DELETE .../stories|recipes/{slug}/schedule/{id}), each cancellable
while pending; the shows' next automatic starts (set in the show files); the next schedule
edges of the displays with the variant in force then. "Preview at a time" opens a display's
state composed for that moment (GET /api/v1/displays/{m}/{d}/state?at=...).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from holobazaar import db
from holobazaar.scenes import schedule as timing
from holobazaar.scenes import scheduled_publish
from holobazaar.scenes.dependencies import market_or_404
from holobazaar.scenes.loader import MarketContent
from holobazaar.shows.starts import next_start
from holobazaar.stories import scheduled as story_schedules
from holobazaar.web.services import services
from holobazaar.web.studio.shell import NO_STORE, StudioPage, open_page

router = APIRouter(include_in_schema=False)

EDGES_SHOWN = 3  # the next changes of each dayparted display


@dataclass
class Entry:
    """One line of the page: what happens when, and how to cancel it (an API URL)."""

    when: str
    what: str
    detail: str = ""
    state: str = "pending"
    cancel: str | None = None
    warning: str = ""


def local(when: datetime, tz: ZoneInfo) -> str:
    return when.astimezone(tz).strftime("%a %d %b %Y %H:%M")


def _variant(market: MarketContent, display: Any, at: datetime, tz: ZoneInfo) -> str:
    hours = market.market.hours
    name = timing.variant_at(display.schedule, at, tz, timing.is_open(hours, tz, at))
    return name or "its own content"


def display_edges(market: MarketContent, now: datetime, tz: ZoneInfo) -> list[dict[str, Any]]:
    """Each dayparted display: its variant now and at its next few edges."""
    out = []
    for display in market.displays.values():
        if not display.schedule:
            continue
        changes, after = [], now
        for _ in range(EDGES_SHOWN):
            edge = timing.next_edge(market.market.hours, [display.schedule], after, tz)
            if edge is None:
                break
            changes.append({"when": local(edge, tz),
                            "variant": _variant(market, display, edge, tz)})
            after = edge
        out.append({"id": display.id, "now": _variant(market, display, now, tz),
                    "changes": changes})
    return out


def show_starts(market: MarketContent, now: datetime, tz: ZoneInfo) -> list[Entry]:
    entries = []
    for show in market.shows.values():
        found = next_start(show, now, tz)
        if found is not None:
            entries.append((found[0], Entry(local(found[0], tz), f"Show “{show.title}” starts",
                                            "set in the show's file (starts:)")))
    return [entry for _, entry in sorted(entries, key=lambda pair: pair[0])]


def publishes(page: StudioPage, tz: ZoneInfo) -> list[Entry]:
    scenes = services(page.request).scenes
    m = page.market
    entries: list[tuple[str, Entry]] = []
    for row in scheduled_publish.listing(scenes, m, states=("pending", "failed")):
        at = datetime.fromisoformat(row["at"])
        entries.append((row["at"], Entry(
            local(at, tz),
            f"Display {row['display']}: publish the scheduled draft “{row['title']}”",
            f"scheduled by {row['actor']}", row["state"],
            f"/api/v1/markets/{m}/displays/{row['display']}/schedule/{row['id']}"
            if row["state"] == "pending" else None,
            row.get("message", "") or row["result"])))
    for story in story_schedules.for_market(scenes.engine, m, ("pending", "failed")):
        collection = "stories" if story.kind == "story" else "recipes"
        info = story.as_json()
        entries.append((info["at"], Entry(
            local(story.at, tz), f"{story.kind.capitalize()} {story.slug}: {story.action}",
            f"revision {story.revision}, scheduled by {story.actor}", story.state,
            f"/api/v1/markets/{m}/{collection}/{story.slug}/schedule/{story.id}"
            if story.state == "pending" else None, story.result)))
    return [entry for _, entry in sorted(entries, key=lambda pair: pair[0])]


@router.get("/studio/{market}/schedule", response_class=HTMLResponse)
async def schedule_page(request: Request, market: str) -> Response:
    page = await open_page(request, market, "schedule")
    if isinstance(page, Response):
        return page
    return await _render(page)


async def _render(page: StudioPage, error: str = "", status: int = 200) -> Response:
    scenes = services(page.request).scenes
    content: MarketContent = market_or_404(scenes, page.market)
    tz = timing.zone(content.market.market.timezone)
    now: datetime = scenes.clock.now()
    edges = display_edges(content, now, tz)
    return page.render("studio/schedule.html", {
        "now": local(now, tz), "timezone": str(tz),
        "publishes": await db.call(scenes.engine, publishes, page, tz),
        "starts": show_starts(content, now, tz), "edges": edges,
        "displays": sorted(content.displays),
        "chosen": edges[0]["id"] if edges else None,  # a dayparted one, if any
        "at_value": now.astimezone(tz).strftime("%Y-%m-%dT%H:%M"),
        "error": error}, status=status)


@router.get("/studio/{market}/schedule/preview", response_class=HTMLResponse)
async def preview_at(request: Request, market: str, display: str = Query("", max_length=64),
                     at: str = Query("", max_length=40)) -> Response:
    """The preview form: to the display's state composed for `at` (the market's time)."""
    page = await open_page(request, market, "schedule")
    if isinstance(page, Response):
        return page
    content: MarketContent = market_or_404(services(request).scenes, market)
    if display not in content.displays:
        return await _render(page, "Choose one of the market's displays.", 422)
    try:
        timing.parse_at(at, timing.zone(content.market.market.timezone))
    except (ValueError, OverflowError):
        return await _render(page, "Give a date and time, e.g. 2026-12-24T18:00.", 422)
    target = f"/api/v1/displays/{market}/{display}/state?{urlencode({'at': at})}"
    return RedirectResponse(target, status_code=303, headers=NO_STORE)
