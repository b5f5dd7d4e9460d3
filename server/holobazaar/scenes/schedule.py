"""Pure evaluation of time-of-day content: is the market open at instant t, which variant
of a display is in force at t, when is the next instant something changes. Everything
takes the time as an argument (the clock lives in holobazaar.scenes.clock), so the
compositor stays a pure function and tests pick any moment.

Local times are wall-clock times in the market's IANA timezone (zoneinfo). A window
`from`/`to` on date d is the interval [instant(d, from), instant(d, to)); `instant` takes
an ambiguous local time (the hour repeated when clocks go back) at its first occurrence,
and a local time that does not exist (the hour skipped when clocks go forward) as the
moment the clocks jump, the first instant whose local time is at or after it."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ValidationError

from holobazaar.scenes.schedule_format import (
    DAY,
    WEEKDAYS,
    OpeningHours,
    ScheduleEntry,
    span_seconds,
)

# How far ahead edges are searched (a week and a day covers every weekly rule); beyond
# it, callers look again later.
HORIZON_DAYS = 8
# The minutes before an opening or closing during which `opens_in`/`closes_in` count down.
COUNTDOWN = timedelta(minutes=60)
NEVER_KEYS = frozenset({"id", "kind", "children"})


@cache
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def valid_zone(name: str) -> str | None:
    """An error message for a timezone name zoneinfo does not know, else None."""
    try:
        if not name or name != name.strip() or name.startswith("/"):
            raise ZoneInfoNotFoundError(name)
        zone(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return (f"unknown timezone {name!r}: use an IANA name such as 'Europe/Amsterdam' "
                "or 'UTC'")
    return None


def local_instant(day: date, seconds: int, tz: ZoneInfo) -> datetime:
    """The UTC instant of local time `seconds` after midnight on `day` (86400: the next
    day's midnight). See the module's note on repeated and skipped local times."""
    if seconds >= DAY:
        day, seconds = day + timedelta(days=1), seconds - DAY
    naive = datetime(day.year, day.month, day.day) + timedelta(seconds=seconds)
    first = naive.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if first.astimezone(tz).replace(tzinfo=None) == naive:
        return first
    # Skipped: fold=1 reads it with the offset after the jump (an instant before it),
    # fold=0 with the one before (after it). The jump lies between: find it.
    low = naive.replace(tzinfo=tz, fold=1).astimezone(UTC)
    high = first
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(tz).replace(tzinfo=None) >= naive:
            high = middle
        else:
            low = middle
    return high.replace(microsecond=0) if high.microsecond else high


def local_exists(day: date, seconds: int, tz: ZoneInfo) -> bool:
    if seconds >= DAY:
        return True
    naive = datetime(day.year, day.month, day.day) + timedelta(seconds=seconds)
    return naive.replace(tzinfo=tz).astimezone(UTC).astimezone(tz).replace(
        tzinfo=None) == naive


def local_date(at: datetime, tz: ZoneInfo) -> date:
    return at.astimezone(tz).date()


# ---- opening hours --------------------------------------------------------------------


@dataclass(frozen=True)
class HoursNow:
    open: bool
    opens_at: datetime | None  # the next opening while closed
    closes_at: datetime | None  # the closing while open

    def state(self, tz: ZoneInfo) -> dict[str, Any]:
        return {"open": self.open,
                "opens_at": _iso(self.opens_at, tz), "closes_at": _iso(self.closes_at, tz)}

    def template(self, at: datetime, tz: ZoneInfo) -> dict[str, Any]:
        """For templates: local clock times and whole minutes to go (rounded up)."""
        return {"open": self.open,
                "opens_at": _clock(self.opens_at, at, tz),
                "closes_at": _clock(self.closes_at, at, tz),
                "opens_in": _minutes(self.opens_at, at),
                "closes_in": _minutes(self.closes_at, at)}


def _iso(when: datetime | None, tz: ZoneInfo) -> str | None:
    return when.astimezone(tz).isoformat() if when else None


def _clock(when: datetime | None, at: datetime, tz: ZoneInfo) -> str | None:
    if when is None:
        return None
    local = when.astimezone(tz)
    if local.date() == at.astimezone(tz).date():
        return local.strftime("%H:%M")
    if local.date() - at.astimezone(tz).date() < timedelta(days=7):
        return local.strftime("%a %H:%M")
    return local.strftime("%d %b %H:%M")


def _minutes(when: datetime | None, at: datetime) -> int | None:
    if when is None:
        return None
    return max(0, math.ceil((when - at).total_seconds() / 60))


def open_intervals(hours: OpeningHours, day: date,
                   tz: ZoneInfo) -> list[tuple[datetime, datetime]]:
    return [(local_instant(day, a, tz), local_instant(day, b, tz))
            for a, b in hours.spans_on(day)]


def hours_at(hours: OpeningHours | None, tz: ZoneInfo, at: datetime,
             search_days: int = 400) -> HoursNow:
    """Open or closed at `at`, and the next change. A market without hours is open."""
    if hours is None:
        return HoursNow(True, None, None)
    today = local_date(at, tz)
    for start, end in open_intervals(hours, today, tz):
        if start <= at < end:
            return HoursNow(True, None, _closing(hours, tz, end))
    for offset in range(search_days + 1):
        for start, _end in open_intervals(hours, today + timedelta(days=offset), tz):
            if start > at:
                return HoursNow(False, start, None)
    return HoursNow(False, None, None)


def _closing(hours: OpeningHours, tz: ZoneInfo, end: datetime) -> datetime:
    """The end of an opening, following ranges that continue it (…-24:00, 00:00-…)."""
    for _ in range(31):
        following = [b for a, b in open_intervals(hours, local_date(end, tz), tz) if a == end]
        if not following:
            return end
        end = max(following)
    return end


def is_open(hours: OpeningHours | None, tz: ZoneInfo, at: datetime) -> bool:
    if hours is None:
        return True
    return any(a <= at < b for a, b in open_intervals(hours, local_date(at, tz), tz))


# ---- dayparting -----------------------------------------------------------------------


def entry_applies(entry: ScheduleEntry, day: date) -> bool:
    if entry.days is not None and WEEKDAYS[day.weekday()] not in entry.days:
        return False
    return entry.dates is None or entry.dates.start <= day <= entry.dates.end


def entry_window(entry: ScheduleEntry, day: date,
                 tz: ZoneInfo) -> tuple[datetime, datetime] | None:
    if not entry_applies(entry, day):
        return None
    first, last = entry.seconds
    return local_instant(day, first, tz), local_instant(day, last, tz)


def in_force(entry: ScheduleEntry, at: datetime, tz: ZoneInfo, market_open: bool) -> bool:
    window = entry_window(entry, local_date(at, tz), tz)
    if window is None or not window[0] <= at < window[1]:
        return False
    return entry.market is None or (entry.market == "open") == market_open


def variant_at(schedule: Iterable[ScheduleEntry], at: datetime, tz: ZoneInfo,
               market_open: bool) -> str | None:
    """The variant in force at `at`: the highest priority among the entries in force
    (the first written on a tie); None for the display's own content."""
    best: ScheduleEntry | None = None
    for entry in schedule:
        if in_force(entry, at, tz, market_open) and (best is None
                                                     or entry.priority > best.priority):
            best = entry
    if best is None or best.variant == "default":
        return None
    return best.variant


def window_edges(schedule: Iterable[ScheduleEntry], after: datetime,
                 tz: ZoneInfo) -> Iterator[datetime]:
    """Every window start and end within the horizon after `after` (unsorted)."""
    today = local_date(after, tz)
    for entry in schedule:
        for offset in range(-1, HORIZON_DAYS + 1):
            window = entry_window(entry, today + timedelta(days=offset), tz)
            if window is not None:
                yield from (edge for edge in window if edge > after)


def hours_edges(hours: OpeningHours | None, after: datetime, tz: ZoneInfo,
                countdown: bool) -> Iterator[datetime]:
    """The next opening or closing; with `countdown`, also each whole minute in the hour
    before it (templates showing `closes_in`/`opens_in` change every minute then)."""
    if hours is None:
        return
    now = hours_at(hours, tz, after, search_days=HORIZON_DAYS)
    change = now.closes_at or now.opens_at
    if change is None:
        return
    yield change
    if countdown and change - after <= COUNTDOWN:
        minute = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
        if minute < change:
            yield minute


def next_edge(hours: OpeningHours | None, schedules: Iterable[list[ScheduleEntry]],
              after: datetime, tz: ZoneInfo, countdown: bool = False) -> datetime | None:
    """The first instant after `after` at which the market's open state or any display's
    variant may change (None: nothing within the horizon; look again later)."""
    edges: list[datetime] = list(hours_edges(hours, after, tz, countdown))
    for schedule in schedules:
        edges.extend(window_edges(schedule, after, tz))
    return min(edges, default=None)


def uses_countdown(texts: Iterable[str]) -> bool:
    """Whether any template counts minutes to an opening or closing."""
    return any("opens_in" in text or "closes_in" in text for text in texts)


def apply_override(node: Any, override: dict[str, Any]) -> Any:
    """The node with a variant's keys replacing its own (validated as the node's kind)."""
    if not override:
        return node
    data = node.model_dump(by_alias=True, exclude={"children"}) if hasattr(
        node, "children") else node.model_dump(by_alias=True)
    data.update(override)
    if hasattr(node, "children"):
        return type(node).model_validate({**data, "children": []}).model_copy(
            update={"children": node.children})
    return type(node).model_validate(data)


def parse_at(text: str, tz: ZoneInfo) -> datetime:
    """`?at=` values: ISO 8601; without an offset it is the market's local time."""
    when = datetime.fromisoformat(text)
    if not 1900 <= when.year <= 9000:  # leaves room for date arithmetic around it
        raise ValueError(f"{text!r}: a year from 1900 to 9000")
    if when.tzinfo is None:
        day = when.date()
        seconds = when.hour * 3600 + when.minute * 60 + when.second
        return local_instant(day, seconds, tz)
    return when.astimezone(UTC)


# ---- checks for `holobazaar validate` -------------------------------------------------

Path = tuple[str | int, ...]


def hours_problems(hours: OpeningHours, tz: ZoneInfo) -> list[tuple[Path, str]]:
    """Dated hours that name a local time the date does not have (clocks going forward)."""
    found: list[tuple[Path, str]] = []
    for index, exception in enumerate(hours.exceptions):
        for n, span in enumerate(exception.hours):
            for seconds in span_seconds(span):
                if not local_exists(exception.date, seconds, tz):
                    found.append((("hours", "exceptions", index, "hours", n),
                                  _skipped(span, exception.date, tz)))
    return found


def _skipped(text: str, day: date, tz: ZoneInfo) -> str:
    return (f"{text}: that local time does not exist on {day.isoformat()} in {tz.key} "
            "(the clocks go forward): choose a time outside the skipped hour")


def schedule_problems(schedule: list[ScheduleEntry], variants: set[str], node_kinds: dict,
                      raw_variants: list[Any], tz: ZoneInfo,
                      has_hours: bool) -> list[tuple[Path, str]]:
    """A display's `schedule:` and `variants:`: names that do not resolve, node overrides
    that are not valid for the node, windows that never occur, skipped local times on
    the dates a window is given for, and windows of equal priority that overlap."""
    found: list[tuple[Path, str]] = []
    for index, raw in enumerate(raw_variants):
        for node_id, override in raw.nodes.items():
            node = node_kinds.get(node_id)
            where: Path = ("display", "variants", index, "nodes", node_id)
            if node is None:
                found.append((where, f"unknown node {node_id!r} (not in this display)"))
                continue
            for key in sorted(set(override) & NEVER_KEYS):
                found.append(((*where, key), f"a variant cannot change a node's {key!r}"))
            if set(override) & NEVER_KEYS:
                continue
            try:
                apply_override(node, override)
            except ValidationError as exc:
                for err in exc.errors(include_url=False):
                    loc = [p for p in err["loc"] if p in override or isinstance(p, int)]
                    found.append(((*where, *loc), err["msg"]))
    for index, entry in enumerate(schedule):
        where = ("display", "schedule", index)
        if entry.variant != "default" and entry.variant not in variants:
            found.append(((*where, "variant"), f"unknown variant {entry.variant!r}"))
        if entry.market is not None and not has_hours:
            found.append(((*where, "market"), "the market has no opening hours (hours: in "
                          "market.yaml), so it is never closed"))
        if _never(entry):
            found.append((where, "this window never occurs: none of its weekdays falls "
                          "between its dates"))
        if entry.dates is not None:
            found.extend(_dated_skips(entry, tz, where))
    for a, b in _overlaps(schedule):
        first, second = schedule[a], schedule[b]
        found.append((("display", "schedule", b), (
            f"overlaps schedule[{a}] ({first.variant!r}) at the same priority "
            f"{second.priority}: give one a higher priority or make them apart")))
    return found


def _never(entry: ScheduleEntry) -> bool:
    if entry.dates is None or entry.days is None:
        return False
    span = (entry.dates.end - entry.dates.start).days
    return span < 6 and not any(
        entry_applies(entry, entry.dates.start + timedelta(days=n)) for n in range(span + 1))


def _dated_skips(entry: ScheduleEntry, tz: ZoneInfo, where: Path) -> list[tuple[Path, str]]:
    assert entry.dates is not None
    found: list[tuple[Path, str]] = []
    day, last = entry.dates.start, min(entry.dates.end, entry.dates.start + timedelta(366))
    while day <= last:
        if entry_applies(entry, day):
            for key, text, seconds in (("from", entry.start, entry.seconds[0]),
                                       ("to", entry.end, entry.seconds[1])):
                if text is not None and not local_exists(day, seconds, tz):
                    found.append(((*where, key), _skipped(text, day, tz)))
        day += timedelta(days=1)
    return found


def _overlaps(schedule: list[ScheduleEntry]) -> Iterator[tuple[int, int]]:
    for b, second in enumerate(schedule):
        for a in range(b):
            first = schedule[a]
            if first.priority == second.priority and _may_overlap(first, second):
                yield a, b
                break


def _may_overlap(a: ScheduleEntry, b: ScheduleEntry) -> bool:
    if a.market is not None and b.market is not None and a.market != b.market:
        return False
    (a0, a1), (b0, b1) = a.seconds, b.seconds
    if a1 <= b0 or b1 <= a0:
        return False
    if a.dates is not None and b.dates is not None and (
            a.dates.end < b.dates.start or b.dates.end < a.dates.start):
        return False
    days_a = set(a.days or WEEKDAYS)
    days_b = set(b.days or WEEKDAYS)
    if not days_a & days_b:
        return False
    if a.dates is None or b.dates is None:
        return True
    start, end = max(a.dates.start, b.dates.start), min(a.dates.end, b.dates.end)
    return any(entry_applies(a, day) and entry_applies(b, day)
               for day in (start + timedelta(days=n)
                           for n in range(min((end - start).days, 6) + 1)))


def market_problems(market: Any) -> list[tuple[Path, str]]:
    """A MarketFile's hours (its timezone is checked by the model)."""
    if market.hours is None:
        return []
    return hours_problems(market.hours, zone(market.market.timezone))


def display_problems(market: Any, display: Any) -> list[tuple[Path, str]]:
    """A Display's variants and schedule against its nodes and the market's hours."""
    if not display.variants and not display.schedule:
        return []
    nodes: dict[str, Any] = {}
    stack = list(display.nodes)
    while stack:
        node = stack.pop()
        nodes[node.id] = node
        stack.extend(getattr(node, "children", ()))
    return schedule_problems(display.schedule, {v.id for v in display.variants}, nodes,
                             display.variants, zone(market.market.timezone),
                             market.hours is not None)


def hours_summary(market: Any, at: datetime) -> str | None:
    """One line for pages: 'Open now · closes 15:00', 'Closed · opens Sat 07:00' (None
    for a market without opening hours)."""
    if market.hours is None:
        return None
    tz = zone(market.market.timezone)
    now = hours_at(market.hours, tz, at).template(at, tz)
    if now["open"]:
        return f"Open now · closes {now['closes_at']}" if now["closes_at"] else "Open now"
    return f"Closed · opens {now['opens_at']}" if now["opens_at"] else "Closed"


def time_signature(market: Any, display: Any, at: datetime) -> tuple[Any, ...]:
    """All that a display's composed state takes from the time `at` (its variant, the
    market's opening state and countdowns): equal signatures, equal states for the same
    other inputs. For caches of composed states (the reconciler's)."""
    if market.hours is None and not display.schedule:
        return ()
    tz = zone(market.market.timezone)
    hours = hours_at(market.hours, tz, at)
    variant = variant_at(display.schedule, at, tz, hours.open) if display.schedule else None
    return variant, tuple(sorted(hours.template(at, tz).items()))
