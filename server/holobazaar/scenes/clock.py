"""The server's notion of "now" for everything that follows the time of day (opening
hours, dayparting, the scheduler): one object, injected, so tests move it instead of
waiting, and so composing stays a pure function of the time it is given.

Times are timezone-aware UTC datetimes; local times are derived with zoneinfo where
they are shown or compared with a market's hours (holobazaar.scenes.schedule)."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware (UTC)."""
        ...

    async def wait(self, until: datetime, at_most: float) -> None:
        """Return once `now() >= until`, or after about `at_most` seconds (whichever is
        first). Callers re-read `now()` afterwards: a wall-clock step (NTP) may have moved
        the time either way meanwhile."""
        ...


class SystemClock:
    """The wall clock. `wait` sleeps on the event loop's monotonic clock in slices of at
    most `at_most` seconds, so a step of the wall clock is noticed within one slice."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def wait(self, until: datetime, at_most: float) -> None:
        remaining = (until - self.now()).total_seconds()
        if remaining > 0:
            await asyncio.sleep(min(remaining, at_most))


class ManualClock:
    """A clock tests set and advance: waiters wake as soon as it moves (or after
    `at_most` real seconds, as with the system clock)."""

    def __init__(self, start: datetime) -> None:
        self._now = as_utc(start)
        self._moved = asyncio.Event()

    def now(self) -> datetime:
        return self._now

    def set(self, when: datetime) -> None:
        """Move to `when` (backwards too: a clock step). Call it on the loop's thread."""
        self._now = as_utc(when)
        self._moved.set()
        self._moved = asyncio.Event()

    def advance(self, seconds: float) -> None:
        self.set(self._now + timedelta(seconds=seconds))

    async def wait(self, until: datetime, at_most: float) -> None:
        if self._now >= until:
            return
        moved = self._moved
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(moved.wait(), at_most)


def as_utc(when: datetime) -> datetime:
    """An aware datetime in UTC (a naive one is taken as UTC)."""
    if when.tzinfo is None:
        return when.replace(tzinfo=UTC)
    return when.astimezone(UTC)
