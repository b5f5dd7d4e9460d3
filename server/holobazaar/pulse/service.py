"""The pulse runtime: takes reactions from the stream (the connection's `reactions` hook),
counts them in memory, publishes the k-anonymous picture on `market/<m>/pulse` at most
once per publish interval, and writes raw events and closed minutes to the database in
batches (never one write per tap)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool

from holobazaar.pulse import store
from holobazaar.pulse.aggregator import KINDS, MarketPulse, bucket_dwell
from holobazaar.pulse.sanitize import sanitize_feedback
from holobazaar.scenes.service import SceneService
from holobazaar.stream.hub import Hub
from holobazaar.stream.protocol import Dwell, Reaction

log = logging.getLogger(__name__)

STATE_VERSION = 1


def pulse_channel(market: str) -> str:
    return f"market/{market}/pulse"


@dataclass(frozen=True)
class PulseSettings:
    k: int = 5
    publish_interval: float = 1.0
    flush_interval: float = 5.0
    retention: float = 2 * 3600.0
    # The 15-minute and day windows move slowly: on the channel they are refreshed every
    # `slow_interval` seconds (the 1-minute window every publish), which keeps each
    # second's patch (and the hub's resume history of it) small.
    slow_interval: float = 10.0
    device_rate: float = 1.0
    device_burst: int = 5


@dataclass(frozen=True)
class CueMark:
    """A show cue that fired (for the dashboard's show mood curve)."""

    at: datetime
    label: str
    zones: tuple[str, ...]


# The shows domain registers one (pulse must not import it): cues fired in [since, until).
CueSource = Callable[[str, datetime, datetime], list[CueMark]]
# The stories domain registers one (web/app.py): a market's published recipes, slug -> name.
RecipeCatalog = Callable[[str], Mapping[str, str]]


def shown_recipes(state: dict) -> dict[str, str]:
    """The recipe cards a display's state shows (the stories binding), slug -> name."""
    told = (state.get("bindings") or {}).get("stories") or {}
    return {r["slug"]: r.get("name", r["slug"]) for r in told.get("recipes") or []
            if isinstance(r, dict) and isinstance(r.get("slug"), str)}


class DeviceLimiter:
    """Token buckets per hashed device id, across all its connections. Idle buckets (full
    again) are dropped by `prune`, so memory follows the devices active right now."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, float(burst)
        self.buckets: dict[str, tuple[float, float]] = {}

    def take(self, device: str, now: float) -> bool:
        tokens, stamp = self.buckets.get(device, (self.burst, now))
        tokens = min(self.burst, tokens + (now - stamp) * self.rate)
        if tokens < 1.0:
            self.buckets[device] = (tokens, now)
            return False
        self.buckets[device] = (tokens - 1.0, now)
        return True

    def prune(self, now: float) -> None:
        refill = self.burst / self.rate
        self.buckets = {d: v for d, v in self.buckets.items() if now - v[1] < refill}


class PulseService:
    def __init__(self, engine: Engine, hub: Hub, scenes: SceneService,
                 settings: PulseSettings | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.engine, self.hub, self.scenes = engine, hub, scenes
        self.settings = settings or PulseSettings()
        self.clock = clock
        self.markets: dict[str, MarketPulse] = {}
        self.stats: Counter[str] = Counter()
        self.devices = DeviceLimiter(self.settings.device_rate, self.settings.device_burst)
        self.listeners: list[Callable[[str], None]] = []  # called after each publish
        self.cue_sources: list[CueSource] = []
        self.recipe_catalog: RecipeCatalog | None = None
        self._salt: tuple[str, bytes] | None = None
        self._events: list[dict] = []
        self._feedback: list[dict] = []
        self._task: asyncio.Task | None = None
        self._rotating: asyncio.Task | None = None
        self._slow: dict[str, tuple[float, dict]] = {}  # market -> (when, slow windows)
        self._flush_lock = asyncio.Lock()

    # ---- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        await self._rotate_salt(self.clock())
        await self._replay()
        await self.publish()
        self._task = asyncio.create_task(self._run(), name="pulse")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush(everything=True)

    async def _run(self) -> None:
        last_flush = time.monotonic()
        while True:
            await asyncio.sleep(self.settings.publish_interval)
            try:
                await self.publish()
                if time.monotonic() - last_flush >= self.settings.flush_interval:
                    last_flush = time.monotonic()
                    await self.flush()
            except Exception:  # pulse must never take the stream down
                log.exception("pulse publish/flush failed")

    async def _rotate_salt(self, now: float) -> bytes:
        day = datetime.fromtimestamp(now, UTC).date().isoformat()
        if self._salt is None or self._salt[0] != day:
            self._salt = (day, await run_in_threadpool(store.day_salt, self.engine, day))
        return self._salt[1]

    async def _replay(self) -> None:
        """Rebuild today's windows from the raw events still kept (after a restart)."""
        now = self.clock()
        since = datetime.fromtimestamp(now - self.settings.retention, UTC)
        for event in await run_in_threadpool(store.events_since, self.engine, since):
            at = event.at if event.at.tzinfo else event.at.replace(tzinfo=UTC)
            pulse = self.market_pulse(event.market)
            if pulse.local_day(at.timestamp()) == pulse.local_day(now):
                pulse.add(at.timestamp(), event.device, event.display, event.zone,
                          event.kind, event.dwell, event.recipe)
        # Those minutes are stored already (or merged if the server stopped mid-minute).
        for pulse in self.markets.values():
            pulse.minutes.clear()

    def market_pulse(self, market: str) -> MarketPulse:
        pulse = self.markets.get(market)
        if pulse is None:
            content = self.scenes.market(market)
            tz = content.market.market.timezone if content else "UTC"
            pulse = self.markets[market] = MarketPulse(market, tz)
        return pulse

    def cues(self, market: str, since: datetime, until: datetime) -> list[CueMark]:
        marks = [m for source in self.cue_sources for m in source(market, since, until)]
        return sorted(marks, key=lambda m: m.at)

    def recipe_names(self, market: str) -> dict[str, str]:
        """Published recipes of a market (slug -> name); empty without the stories domain."""
        return dict(self.recipe_catalog(market)) if self.recipe_catalog else {}

    def _recipe_refusal(self, market: str, display: str, recipe: str) -> tuple[str, str] | None:
        # The card the visitor tapped is normally on the display's state right now; a card
        # that just left it (stock changed) still counts if the recipe is published.
        channel = f"market/{market}/display/{display}"
        if self.hub.has_channel(channel) and recipe in shown_recipes(
                self.hub.snapshot(channel)[2]):
            return None
        if recipe in self.recipe_names(market):
            return None
        return ("unknown_recipe", f"no published recipe {recipe!r} in this market")

    # ---- the stream's hook -----------------------------------------------------------

    def accept(self, message: Reaction | Dwell) -> tuple[str, str] | None:
        """Count a reaction or dwell report, or say why not (the connection has already
        checked that the visitor joined this display's channel)."""
        refusal = self._accept(message)
        if refusal is not None:
            self.stats[f"refused_{refusal[0]}"] += 1
        return refusal

    def _accept(self, message: Reaction | Dwell) -> tuple[str, str] | None:
        content = self.scenes.market(message.market)
        display = content.displays.get(message.display) if content else None
        if display is None:
            return ("unknown_display", f"no display {message.display!r} in this market")
        dwell: int | None = None
        if isinstance(message, Reaction):
            if message.kind not in KINDS:
                return ("unknown_kind", f"kind must be one of {', '.join(KINDS)}")
            kind = message.kind
            if message.recipe is not None:
                refusal = self._recipe_refusal(message.market, display.id, message.recipe)
                if refusal is not None:
                    return refusal
        else:
            kind = "dwell"
            dwell, clamped = bucket_dwell(message.seconds)
            if clamped:
                self.stats["dwell_clamped"] += 1
        now = self.clock()
        stale = self._salt is None or self._salt[0] != datetime.fromtimestamp(
            now, UTC).date().isoformat()
        if stale and (self._rotating is None or self._rotating.done()):
            # Midnight UTC passed: a new salt is made off the loop (once); until it is
            # there, the old one goes on for a moment.
            self._rotating = asyncio.get_running_loop().create_task(
                    self._rotate_salt(now))
        assert self._salt is not None
        device = hmac.new(self._salt[1], message.device.encode(), hashlib.sha256).hexdigest()[:16]
        if not self.devices.take(device, now):
            return ("rate_limited", "this device is reacting too fast; try again in a moment")
        recipe = message.recipe if isinstance(message, Reaction) else None
        self.market_pulse(message.market).add(now, device, display.id, display.zone, kind,
                                              dwell, recipe)
        self.stats[f"accepted_{kind}"] += 1
        if recipe is not None:
            self.stats["accepted_recipe"] += 1
        at = datetime.fromtimestamp(now, UTC)
        self._events.append({"market": message.market, "display": display.id,
                             "zone": display.zone, "kind": kind, "dwell": dwell,
                             "recipe": recipe, "device": device, "at": at})
        if isinstance(message, Reaction) and message.text and message.text.strip():
            text, flags = sanitize_feedback(message.text)
            if text:
                self.stats["feedback_held"] += 1
                if flags:
                    self.stats["feedback_sanitized"] += 1
                self._feedback.append({"market": message.market, "display": display.id,
                                       "kind": kind, "text": text, "flags": "; ".join(flags),
                                       "status": "held", "created_at": at})
        return None

    # ---- publishing and storing --------------------------------------------------------

    def state(self, market: str, live: bool = False) -> dict:
        """The k-anonymous picture. `live`: as on the channel, where the slow windows are
        refreshed every `slow_interval` seconds; otherwise everything is current."""
        pulse = self.market_pulse(market)
        now, k = self.clock(), self.settings.k
        if live:
            windows = pulse.view(now, k, ("1m",))
            stamp, slow = self._slow.get(market, (-1e18, {}))
            if now - stamp >= self.settings.slow_interval:
                slow = pulse.view(now, k, ("15m", "day"))
                self._slow[market] = (now, slow)
            windows.update(slow)
        else:
            windows = pulse.view(now, k)
        return {"v": STATE_VERSION, "market": market, "k": k, "kinds": list(KINDS),
                "windows": windows}

    async def publish(self) -> None:
        content = self.scenes.content
        if content is None:
            return
        for market in content.markets:
            state = self.state(market, live=True)
            if await self.hub.publish(pulse_channel(market), state) is not None:
                self.stats["published"] += 1
            for listener in self.listeners:
                listener(market)
        self.devices.prune(self.clock())

    async def flush(self, everything: bool = False) -> None:
        """Write buffered raw events, held feedback and closed minutes; prune old events."""
        async with self._flush_lock:
            events, self._events = self._events, []
            held, self._feedback = self._feedback, []
            now = self.clock()
            closed = {m: p.closed_minutes(now, everything) for m, p in self.markets.items()}
            before = datetime.fromtimestamp(now - self.settings.retention, UTC)

            def write() -> None:
                store.add_events(self.engine, events)
                store.hold_feedback(self.engine, held)
                for market, rows in closed.items():
                    if rows:
                        store.add_minutes(self.engine, market, rows)
                store.prune_events(self.engine, before)

            await run_in_threadpool(write)
