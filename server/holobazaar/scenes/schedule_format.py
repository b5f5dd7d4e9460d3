"""The scene format's time-of-day parts: a market's opening hours (`hours:` in
market.yaml) and a display's content variants and schedule (`variants:`, `schedule:` in a
display file). Only the shape is checked here; what needs the market's timezone or the
whole display (unknown node ids, overlapping windows, times that do not exist on a DST
day) is checked by holobazaar.scenes.schedule.problems, called by the loader."""

from __future__ import annotations

import re
from datetime import date
from functools import cache
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    model_validator,
)

Ident = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY = 86_400

_TIME = re.compile(r"^(\d{2}):(\d{2})(?::(\d{2}))?$")
TIME_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$|^24:00(:00)?$"
SPAN_PATTERN = r"^[0-9:]{5,8}-[0-9:]{5,8}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


@cache
def seconds_of(text: str) -> int:
    """'08:30' -> 30600; '24:00' -> 86400 (the end of the day). ValueError if invalid."""
    found = _TIME.match(text.strip()) if isinstance(text, str) else None
    if found is None:
        raise ValueError(f"invalid time {text!r}: write HH:MM (or HH:MM:SS), e.g. 08:30")
    hours, minutes, seconds = int(found[1]), int(found[2]), int(found[3] or 0)
    if (hours, minutes, seconds) == (24, 0, 0):
        return DAY
    if hours > 23 or minutes > 59 or seconds > 59:
        raise ValueError(f"invalid time {text!r}: hours 00-23, minutes and seconds 00-59 "
                         "(24:00 only as the end of a day)")
    return hours * 3600 + minutes * 60 + seconds


@cache
def span_seconds(text: str) -> tuple[int, int]:
    """'08:00-12:30' -> (28800, 45000)."""
    start, sep, end = text.partition("-")
    if not sep:
        raise ValueError(f"invalid time range {text!r}: write HH:MM-HH:MM, e.g. 08:00-12:30")
    first, last = seconds_of(start), seconds_of(end)
    if first == DAY:
        raise ValueError(f"invalid time range {text!r}: a range cannot start at 24:00")
    if last <= first:
        raise ValueError(f"invalid time range {text!r}: it ends before it starts (a range "
                         "over midnight is two: ...-24:00 and the next day's 00:00-...)")
    return first, last


def _time(text: Any) -> Any:
    seconds_of(text)
    return text


def _span(text: str) -> str:
    span_seconds(text)
    return text.replace(" ", "")


def _spans(value: Any) -> Any:
    if value == "closed":
        return ()
    if isinstance(value, str):
        return (value,)
    return value


ClockTime = Annotated[str, AfterValidator(_time),
                      WithJsonSchema({"type": "string", "pattern": TIME_PATTERN})]
Span = Annotated[str, AfterValidator(_span),
                 WithJsonSchema({"type": "string", "pattern": SPAN_PATTERN,
                                 "examples": ["08:00-12:30"]})]
DayHours = Annotated[
    tuple[Span, ...], BeforeValidator(_spans),
    WithJsonSchema({"anyOf": [
        {"const": "closed"},
        {"type": "string", "pattern": SPAN_PATTERN},
        {"type": "array", "items": {"type": "string", "pattern": SPAN_PATTERN},
         "maxItems": 12}]}),
    Field(max_length=12),
]


class DateHours(_Strict):
    date: date
    hours: DayHours = Field(description="'closed', a range '08:00-15:00' or a list of them.")
    note: str = Field("", max_length=200, description="Why (shown to staff).")


class OpeningHours(_Strict):
    """`hours:` in market.yaml, in the market's timezone."""

    weekly: dict[Weekday, DayHours] = Field(
        default_factory=dict, description="Per weekday; a weekday left out is closed.")
    closed: list[date] = Field(default_factory=list, max_length=400,
                               description="Whole days closed (holidays).")
    exceptions: list[DateHours] = Field(default_factory=list, max_length=400,
                                        description="Other hours on these dates.")

    @model_validator(mode="after")
    def _one_rule_per_date(self) -> OpeningHours:
        seen: set[date] = set()
        for day in [*self.closed, *(e.date for e in self.exceptions)]:
            if day in seen:
                raise ValueError(f"{day.isoformat()} is listed twice in closed/exceptions")
            seen.add(day)
        return self

    def spans_on(self, day: date) -> tuple[tuple[int, int], ...]:
        """The day's opening ranges in seconds of the local day, sorted."""
        for exception in self.exceptions:
            if exception.date == day:
                return tuple(sorted(span_seconds(s) for s in exception.hours))
        if day in self.closed:
            return ()
        spans = self.weekly.get(WEEKDAYS[day.weekday()], ())
        return tuple(sorted(span_seconds(s) for s in spans))


class DateRange(_Strict):
    start: date = Field(alias="from")
    end: date = Field(alias="to", description="Inclusive.")

    @model_validator(mode="after")
    def _ordered(self) -> DateRange:
        if self.end < self.start:
            raise ValueError("'to' is before 'from'")
        return self


class ScheduleEntry(_Strict):
    """One window in which a variant is in force: every condition given must hold."""

    variant: Ident = Field(description="A variant of this display, or 'default'.")
    days: list[Weekday] | None = Field(None, min_length=1, max_length=7,
                                       description="Weekdays; all when left out.")
    start: ClockTime | None = Field(None, alias="from", description="Local time, HH:MM.")
    end: ClockTime | None = Field(None, alias="to", description="Local time, exclusive; "
                                  "24:00 is the end of the day.")
    dates: DateRange | None = Field(None, description="Only between these dates.")
    market: Literal["open", "closed"] | None = Field(
        None, description="Only while the market is open (or closed), by its hours.")
    priority: int = Field(0, ge=-1000, le=1000, description="The highest in force wins.")

    @model_validator(mode="after")
    def _window(self) -> ScheduleEntry:
        if self.start is not None and seconds_of(self.start) == DAY:
            raise ValueError("'from' cannot be 24:00")
        if seconds_of(self.end or "24:00") <= seconds_of(self.start or "00:00"):
            raise ValueError(f"'to' ({self.end}) is not after 'from' ({self.start}): a window "
                             "over midnight is two entries (...-24:00 and 00:00-...)")
        if len(set(self.days or ())) != len(self.days or ()):
            raise ValueError("a weekday is listed twice")
        return self

    @property
    def seconds(self) -> tuple[int, int]:
        return seconds_of(self.start or "00:00"), seconds_of(self.end or "24:00")


class Variant(_Strict):
    """Content that replaces parts of the display while a schedule entry is in force."""

    id: Ident
    title: str | None = Field(None, max_length=2000, description="Template.")
    description: str | None = Field(None, max_length=2000, description="Template.")
    nodes: dict[Ident, dict[str, Any]] = Field(
        default_factory=dict, description="By node id: keys that replace the node's "
        "(any key of its kind except id, kind and children).")

    @model_validator(mode="after")
    def _not_default(self) -> Variant:
        if self.id == "default":
            raise ValueError("'default' is the display's own content; name variants otherwise")
        return self
