"""In-memory sliding-window aggregates of visitors' reactions (docs/pulse.md).

One `MarketPulse` per market keeps, per scope (the market, each zone, each display, and
each recipe reacted to from a display's recipe cards):
reaction counts per kind and a dwell histogram in 5-second slots (the 1-minute and
15-minute windows are sums over the last 12 / 180 slots), the devices seen in each window
(insertion-ordered dicts pruned from the front, so a distinct count is a `len`), and running
totals for the market's local day. Everything is bounded by the window lengths and the
number of devices active in them: memory does not grow with the number of events.

Device ids arriving here are already hashed with the day's server-side salt (service.py).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

KINDS: tuple[str, ...] = ("love", "wow", "hungry", "learn")
# Dwell is reported in coarse buckets (lower bounds, seconds): "in view for 30-59 s" is 30.
DWELL_BUCKETS: tuple[int, ...] = (0, 5, 15, 30, 60, 120, 300)
DWELL_MAX = DWELL_BUCKETS[-1]
# Mood (docs/pulse.md): each reaction adds its weight, a long look (dwell >= 60 s) adds
# 0.5; mood = 100 * S / (S + D) for D distinct devices: 0 = nobody reacted, 50 = one
# love per visitor, approaching 100 as visitors react more and more warmly.
KIND_WEIGHTS = {"love": 1.0, "wow": 0.75, "hungry": 0.75, "learn": 0.5}
LONG_DWELL, LONG_DWELL_WEIGHT = 60, 0.5

SLOT_SECONDS = 5
WINDOWS: dict[str, int] = {"1m": 60, "15m": 900}
_N = len(KINDS) + len(DWELL_BUCKETS)
_KIND_INDEX = {k: i for i, k in enumerate(KINDS)}
# Looked up with the dwell value an event carries: a miss (None too) is a KeyError, the
# caller's malformed event.
_DWELL_INDEX: dict[int | None, int] = {b: len(KINDS) + i for i, b in enumerate(DWELL_BUCKETS)}


def bucket_dwell(seconds: float) -> tuple[int, bool]:
    """The dwell bucket for a reported duration, and whether it had to be clamped (more
    than the largest bucket, or not a bucket value: a forged or buggy client)."""
    value = min(max(seconds, 0.0), float(DWELL_MAX))
    bucket = max(b for b in DWELL_BUCKETS if b <= value)
    return bucket, bucket != seconds


def mood(counts: dict[str, int], long_dwells: int, devices: int) -> int:
    score = sum(KIND_WEIGHTS[k] * counts.get(k, 0) for k in KINDS)
    score += LONG_DWELL_WEIGHT * long_dwells
    if devices <= 0 or score <= 0:
        return 0
    return round(100 * score / (score + devices))


def median_dwell(hist: list[int]) -> int | None:
    """Median of the dwell histogram (bucket lower bounds), None without dwell reports."""
    total = sum(hist)
    if total == 0:
        return None
    middle, seen = (total + 1) // 2, 0
    for bucket, count in zip(DWELL_BUCKETS, hist, strict=True):
        seen += count
        if seen >= middle:
            return bucket
    return DWELL_BUCKETS[-1]  # pragma: no cover (the loop always reaches middle)


@dataclass
class Figures:
    """Counts for one scope over one window, before the k-anonymity check."""

    counts: list[int] = field(default_factory=lambda: [0] * _N)
    devices: int = 0

    def as_state(self) -> dict:
        counts = {k: self.counts[i] for i, k in enumerate(KINDS)}
        hist = self.counts[len(KINDS):]
        long_dwells = sum(c for b, c in zip(DWELL_BUCKETS, hist, strict=True)
                          if b >= LONG_DWELL)
        return {
            "devices": self.devices,
            "counts": counts,
            "reactions": sum(counts.values()),
            "dwell_reports": sum(hist),
            "dwell_median": median_dwell(hist),
            "mood": mood(counts, long_dwells, self.devices),
        }


class Scope:
    """One display, zone or the whole market."""

    __slots__ = ("day_counts", "day_devices", "day_floor", "seen", "slots")

    def __init__(self) -> None:
        self.slots: deque[tuple[int, list[int]]] = deque()  # (slot start, counts)
        self.seen = {name: OrderedDict[str, float]() for name in WINDOWS}
        self.day_counts = [0] * _N
        self.day_devices: set[str] = set()
        # Distinct devices of stored minutes older than the raw events (after a takeover):
        # the largest per-minute count, a lower bound (the device sets are gone).
        self.day_floor = 0

    def _slot(self, start: int) -> list[int]:
        if not self.slots or self.slots[-1][0] < start:
            self.slots.append((start, [0] * _N))
            return self.slots[-1][1]
        # Events from other nodes can arrive a moment out of order: the slot they belong to.
        position = len(self.slots)
        for begin, counts in reversed(self.slots):
            if begin == start:
                return counts
            if begin < start:
                break
            position -= 1
        self.slots.insert(position, (start, [0] * _N))
        return self.slots[position][1]

    def add(self, now: float, device: str, index: int) -> None:
        self._slot(int(now) // SLOT_SECONDS * SLOT_SECONDS)[index] += 1
        self.day_counts[index] += 1
        self.day_devices.add(device)
        for seen in self.seen.values():
            seen[device] = now
            seen.move_to_end(device)

    def prune(self, now: float) -> None:
        longest = max(WINDOWS.values())
        while self.slots and self.slots[0][0] <= now - longest - SLOT_SECONDS:
            self.slots.popleft()
        for name, seen in self.seen.items():
            limit = now - WINDOWS[name]
            while seen:
                if seen[next(iter(seen))] > limit:
                    break
                seen.popitem(last=False)

    def window(self, name: str, now: float) -> Figures:
        if name == "day":
            return Figures(list(self.day_counts), max(len(self.day_devices), self.day_floor))
        since = now - WINDOWS[name]
        total = [0] * _N
        for start, counts in reversed(self.slots):
            if start + SLOT_SECONDS <= since:
                break
            for i, c in enumerate(counts):
                if c:
                    total[i] += c
        return Figures(total, len(self.seen[name]))

    def reset_day(self) -> None:
        self.day_counts = [0] * _N
        self.day_devices = set()
        self.day_floor = 0


@dataclass
class MinuteRow:
    """One scope's figures for one closed minute, for the history table."""

    minute: datetime
    scope: str  # "market" | "zone" | "display" | "recipe"
    scope_id: str
    figures: Figures


class _MinuteAcc:
    __slots__ = ("counts", "devices")

    def __init__(self) -> None:
        self.counts = [0] * _N
        self.devices: set[str] = set()


class MarketPulse:
    """All scopes of one market. Not thread-safe: used from the event loop only."""

    def __init__(self, market: str, tz: str = "UTC") -> None:
        self.market = market
        try:
            self.tz = ZoneInfo(tz)
        except (KeyError, ValueError):
            self.tz = ZoneInfo("UTC")
        self.scopes: dict[tuple[str, str], Scope] = {}
        self.day: date | None = None
        self._day_span = (0.0, 0.0)  # self.day as timestamps [start, end)
        self.minutes: dict[tuple[int, str, str], _MinuteAcc] = {}

    def local_day(self, now: float) -> date:
        return datetime.fromtimestamp(now, self.tz).date()

    def _roll_day(self, now: float) -> None:
        if self._day_span[0] <= now < self._day_span[1]:
            return
        today = self.local_day(now)
        start, end = day_bounds(today, self.tz)
        self._day_span = (start.timestamp(), end.timestamp())
        if today != self.day:
            self.day = today
            for scope in self.scopes.values():
                scope.reset_day()

    def add(self, now: float, device: str, display: str, zone: str, kind: str,
            dwell: int | None = None, recipe: str | None = None) -> None:
        """Count one reaction (kind in KINDS) or dwell report (kind "dwell", with its bucket).
        A reaction to a recipe card counts for the display it was shown on (and its zone
        and the market) and for the recipe. The caller has validated everything."""
        self._roll_day(now)
        index = _DWELL_INDEX[dwell] if kind == "dwell" else _KIND_INDEX[kind]
        minute = int(now) // 60 * 60
        keys = [("market", self.market), ("zone", zone), ("display", display)]
        if recipe is not None and kind != "dwell":
            keys.append(("recipe", recipe))
        for key in keys:
            scope = self.scopes.get(key)
            if scope is None:
                scope = self.scopes[key] = Scope()
            scope.add(now, device, index)
            acc = self.minutes.get((minute, *key))
            if acc is None:
                acc = self.minutes[(minute, *key)] = _MinuteAcc()
            acc.counts[index] += 1
            acc.devices.add(device)

    def add_history(self, now: float, scope: str, ident: str, counts: list[int],
                    devices: int) -> None:
        """Count a stored minute of today into the day window (a new aggregator rebuilding
        the part of the day older than the raw events kept)."""
        self._roll_day(now)
        found = self.scopes.get((scope, ident))
        if found is None:
            found = self.scopes[(scope, ident)] = Scope()
        found.day_counts = [a + b for a, b in zip(found.day_counts, counts, strict=True)]
        found.day_floor = max(found.day_floor, devices)

    def drop_minutes(self, stored: set[tuple[int, str, str]]) -> None:
        """Forget the open-minute accumulators of minutes already stored."""
        for key in [key for key in self.minutes if key in stored]:
            del self.minutes[key]

    def prune(self, now: float) -> None:
        self._roll_day(now)
        for scope in self.scopes.values():
            scope.prune(now)

    def figures(self, kind: str, ident: str, window: str, now: float) -> Figures:
        scope = self.scopes.get((kind, ident))
        return scope.window(window, now) if scope else Figures()

    def view(self, now: float, k: int, windows: tuple[str, ...] = (*WINDOWS, "day")) -> dict:
        """The k-anonymous picture (docs/pulse.md, "Live channel"): the windows asked for,
        every scope with at least k distinct devices; smaller groups are left out."""
        self.prune(now)
        out_windows = {}
        for name in windows:
            out: dict = {"market": None, "zones": {}, "displays": {}, "recipes": {}}
            for (kind, ident), scope in sorted(self.scopes.items()):
                figures = scope.window(name, now)
                if figures.devices < k:
                    continue
                if kind == "market":
                    out["market"] = figures.as_state()
                else:
                    out[f"{kind}s"][ident] = figures.as_state()
            out_windows[name] = out
        return out_windows

    def closed_minutes(self, now: float, everything: bool = False) -> list[MinuteRow]:
        """Take the per-minute accumulators of minutes that have ended (all, at shutdown)."""
        current = int(now) // 60 * 60
        rows = []
        for key in [key for key in self.minutes if everything or key[0] < current]:
            acc = self.minutes.pop(key)
            minute, kind, ident = key
            rows.append(MinuteRow(datetime.fromtimestamp(minute, UTC), kind, ident,
                                  Figures(acc.counts, len(acc.devices))))
        return rows


def day_start(day: date, tz: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=tz)


def day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    start = day_start(day, tz)
    return start, day_start(day + timedelta(days=1), tz)
