"""Shows that start by themselves: a show file's `starts:` (once at a local date and time,
or weekly) as an edge source of the scenes scheduler (holobazaar.scenes.scheduler), which
fires each start once in the cluster under its lease. A start GOes from the first cue
unless a performer is running the show (running or paused: the start is skipped and
logged); afterwards the performer takes over as after their own GO (hold, skip, stop)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from holobazaar.scenes import schedule
from holobazaar.scenes.clock import Clock
from holobazaar.scenes.loader import MarketContent
from holobazaar.scenes.schedule_format import WEEKDAYS, seconds_of
from holobazaar.shows.models import Show, ShowStart
from holobazaar.shows.runner import ShowError, ShowRunner
from holobazaar.shows.service import ShowService

log = logging.getLogger(__name__)


def start_instants(start: ShowStart, after: datetime, tz: ZoneInfo) -> list[datetime]:
    """The start's instants in the horizon after `after` (unsorted)."""
    if start.at is not None:
        when = start.at
        if when.tzinfo is None:
            seconds = when.hour * 3600 + when.minute * 60 + when.second
            return [schedule.local_instant(when.date(), seconds, tz)]
        return [when.astimezone(UTC)]
    assert start.time is not None
    today, found = schedule.local_date(after, tz), []
    for offset in range(-1, schedule.HORIZON_DAYS + 1):
        day = today + timedelta(days=offset)
        if start.days is not None and WEEKDAYS[day.weekday()] not in start.days:
            continue
        if start.dates is not None and not start.dates.start <= day <= start.dates.end:
            continue
        found.append(schedule.local_instant(day, seconds_of(start.time), tz))
    return found


def next_start(show: Show, after: datetime, tz: ZoneInfo) -> tuple[datetime, ShowStart] | None:
    upcoming = [(when, start) for start in show.starts
                for when in start_instants(start, after, tz) if when > after]
    return min(upcoming, key=lambda pair: pair[0], default=None)


class ShowStarts:
    """The scheduler's edge source for show starts."""

    name = "show-starts"

    def __init__(self, shows: ShowService) -> None:
        self.shows = shows
        self.log: list[dict[str, Any]] = []  # what happened to each start (newest last)

    def next_edge(self, market: MarketContent, after: datetime) -> datetime | None:
        tz = schedule.zone(market.market.market.timezone)
        found = [pair[0] for show in market.shows.values()
                 if (pair := next_start(show, after, tz)) is not None]
        return min(found, default=None)

    async def fire(self, market: MarketContent, edge: datetime, now: datetime) -> None:
        tz = schedule.zone(market.market.market.timezone)
        for show in market.shows.values():
            found = next_start(show, edge - timedelta(microseconds=1), tz)
            if found is None or found[0] != edge:
                continue
            await self._start(market.id, show, found[1], edge, now)

    async def _start(self, market: str, show: Show, start: ShowStart, edge: datetime,
                     now: datetime) -> None:
        late = (now - edge).total_seconds()
        outcome = "started"
        if late > start.catch_up:
            outcome = "skipped: missed by more than catch_up"
        else:
            runner = self.shows.runner(market, show.id)
            if runner.status() in ("running", "paused"):
                outcome = "skipped: a performer is running the show"
            else:
                try:
                    await runner.jump(show.cues[0].number, go=True)
                except ShowError as exc:
                    outcome = f"skipped: {exc.message}"
        entry = {"market": market, "show": show.id, "at": edge.isoformat(),
                 "late_s": round(late, 1), "outcome": outcome}
        self.log = [*self.log[-99:], entry]
        (log.info if outcome == "started" else log.warning)(
            "show %s/%s scheduled at %s: %s", market, show.id, edge.isoformat(), outcome)


async def console_state(shows: ShowService, runner: ShowRunner) -> dict[str, Any]:
    """What the performer console shows (ShowService.state) and the show's next
    scheduled start: `next_start` is {at (local ISO time), label} or null."""
    state = await shows.state(runner)
    state["next_start"] = next_start_state(shows, shows.scenes.clock, runner.market,
                                           runner.show.id)
    return state


def next_start_state(shows: ShowService, clock: Clock, market: str,
                     show_id: str) -> dict[str, Any] | None:
    """The show's next scheduled start, local time with offset."""
    content = shows.scenes.market(market)
    show = content.shows.get(show_id) if content is not None else None
    if content is None or show is None or not show.starts:
        return None
    tz = schedule.zone(content.market.market.timezone)
    found = next_start(show, clock.now(), tz)
    if found is None:
        return None
    return {"at": found[0].astimezone(tz).isoformat(),
            "label": found[0].astimezone(tz).strftime("%a %d %b %H:%M")}
