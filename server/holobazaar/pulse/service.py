"""The pulse runtime: takes reactions from the stream (the connection's `reactions` hook),
counts them in memory, publishes the k-anonymous picture on `market/<m>/pulse` at most
once per publish interval, and writes raw events and closed minutes to the database in
batches (never one write per tap).

Two roles (docs/pulse.md, "Several nodes"): every node *accepts* its clients' reactions
(validation, salted device hash, per-device limit, held notes) and hands each event to its
transport; one node *aggregates* (`leading`): it counts the events of all nodes, publishes
the channel, writes raw events and minutes, and drives the `pulse.*` bindings. With one
node (in-process broker) the transport hands events straight to this process's aggregator;
with Redis, the aggregator is the holder of the `pulse-aggregator` lease (`lead`)."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import math
import time
from collections import Counter, OrderedDict, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from redis.exceptions import RedisError
from sqlalchemy.engine import Engine

from holobazaar import db
from holobazaar.channels import display_channel, pulse_channel
from holobazaar.pulse import database
from holobazaar.pulse.aggregator import KINDS, MarketPulse, bucket_dwell, day_bounds
from holobazaar.pulse.sanitize import sanitize_feedback
from holobazaar.pulse.transport import Event, LocalTransport, Transport
from holobazaar.scenes.service import SceneService
from holobazaar.stream.broker import BrokerUnavailable
from holobazaar.stream.hub import Hub
from holobazaar.stream.protocol import Dwell, Reaction

log = logging.getLogger(__name__)

STATE_VERSION = 1
# A new aggregator skips stream events it already read from the database (written by the
# previous one, which died before storing its stream cursor): those of the last 2 minutes.
REPLAY_OVERLAP = 120.0


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
    # How long a reaction's id is remembered: a resend within it is not counted again (the
    # client keeps unsent taps for an hour, docs/pulse.md "Offline").
    dedup_window: float = 2 * 3600.0


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


def shown_recipes(state: dict) -> dict[str, Any]:
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
        # max(): events from other nodes may arrive a moment out of order.
        now = max(now, stamp)
        tokens = min(self.burst, tokens + (now - stamp) * self.rate)
        if tokens < 1.0:
            self.buckets[device] = (tokens, now)
            return False
        self.buckets[device] = (tokens - 1.0, now)
        return True

    def prune(self, now: float) -> None:
        refill = self.burst / self.rate
        self.buckets = {d: v for d, v in self.buckets.items() if now - v[1] < refill}


class SeenIds:
    """Reaction ids (with the hashed device) seen in the last `window` seconds, at most
    `limit` of them, oldest dropped first: a reaction resent after a reconnect (the client's
    offline queue) is counted once. Memory follows the reactions of the window."""

    def __init__(self, window: float, limit: int = 200_000) -> None:
        self.window, self.limit = window, limit
        self.seen: OrderedDict[tuple[str, str], float] = OrderedDict()

    def __contains__(self, key: tuple[str, str]) -> bool:
        return key in self.seen

    def add(self, key: tuple[str, str], now: float) -> None:
        self.seen[key] = now
        self.seen.move_to_end(key)
        while self.seen and (len(self.seen) > self.limit
                             or next(iter(self.seen.values())) < now - self.window):
            self.seen.popitem(last=False)


class PulseService:
    def __init__(self, engine: Engine, hub: Hub, scenes: SceneService,
                 settings: PulseSettings | None = None,
                 clock: Callable[[], float] = time.time,
                 transport: Transport | None = None,
                 cue_sources: list[CueSource] | None = None,
                 recipe_catalog: RecipeCatalog | None = None) -> None:
        self.engine, self.hub, self.scenes = engine, hub, scenes
        self.settings = settings or PulseSettings()
        self.clock = clock
        self.transport = transport or LocalTransport()
        self.markets: dict[str, MarketPulse] = {}
        self.stats: Counter[str] = Counter()
        # CPU seconds (this thread) of pulse's own work: accept, aggregate, publish, flush.
        self.cpu: defaultdict[str, float] = defaultdict(float)
        self.devices = DeviceLimiter(self.settings.device_rate, self.settings.device_burst)
        # The aggregator's limiter over the events of every node: the per-device limit
        # across the cluster (a device tapping through two nodes gets one budget).
        self.cluster_devices = DeviceLimiter(self.settings.device_rate,
                                             self.settings.device_burst)
        # Reaction ids: those this node accepted, and those the aggregator counted (a
        # resend may reach another node).
        self.accepted_ids = SeenIds(self.settings.dedup_window)
        self.counted_ids = SeenIds(self.settings.dedup_window)
        self.leading = False
        self.terms = 0  # times this node became the aggregator
        self._cursor: str | None = None
        self._replayed: set[tuple[str, datetime]] = set()
        self._replayed_until = 0.0
        # Called with the market after each publish (`add_listener`).
        self._listeners: list[Callable[[str], None]] = []
        self.cue_sources: list[CueSource] = list(cue_sources or [])
        self.recipe_catalog = recipe_catalog
        self._salt: tuple[str, bytes] | None = None
        self._salt_span = (0.0, 0.0)  # the salt's UTC day, as timestamps [start, end)
        self._events: list[dict] = []
        self._feedback: list[dict] = []
        self._task: asyncio.Task | None = None
        self._rotating: asyncio.Task | None = None
        self._slow: dict[str, tuple[float, dict]] = {}  # market -> (when, slow windows)
        self._flush_lock = asyncio.Lock()

    def add_listener(self, listener: Callable[[str], None]) -> None:
        """Call `listener(market)` after each publish of the market's pulse (quick: it runs
        in the publish loop)."""
        self._listeners.append(listener)

    # ---- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        """Start accepting. With one node, aggregate here too; with Redis the app runs
        `lead` under the cluster's `pulse-aggregator` lease."""
        await self._rotate_salt(self.clock())
        if isinstance(self.transport, LocalTransport):  # one node: sent events come here
            self.transport.sink = self.ingest
        await self.transport.start()
        if not self.transport.distributed:
            await self._take_over()
            self.leading = True
            await self.publish()
        else:
            await self._follow()  # clients may join the channel before the lease is held
        self._task = asyncio.create_task(self._run(), name="pulse")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.transport.close()
        await self.flush(everything=True)
        self.leading = False

    async def lead(self) -> None:
        """The aggregator's duty (Redis): rebuild from the database, then count every
        node's events from the stream until the lease is lost or the node stops."""
        try:
            await self._take_over()
            self.leading = True
            await self.publish()
            async for cursor, events in self.transport.consume(self._cursor):
                started = time.thread_time()
                for event in events:
                    self.ingest(event)
                self._cursor = cursor
                self.cpu["aggregate"] += time.thread_time() - started
        finally:
            if self.leading:
                # Not flushed: the next aggregator reads these from the database and the
                # stream after the stored cursor (flushing now could count them twice).
                self.leading = False
                self._events = []
                for pulse in self.markets.values():
                    pulse.minutes.clear()

    async def _run(self) -> None:
        last_flush = last_publish = time.monotonic()
        flushing: asyncio.Task | None = None
        try:
            while True:
                # A publish ends at least `publish_interval` after the previous one ended
                # (its frame goes out at its end), so the channel never exceeds its rate;
                # a slow database write (its own task) does not hold it back.
                await asyncio.sleep(max(0.0, last_publish + self.settings.publish_interval
                                        - time.monotonic()))
                try:
                    if self.leading:
                        await self.publish()
                    else:
                        await self._follow()
                        self.devices.prune(self.clock())
                except (RedisError, OSError, BrokerUnavailable) as exc:  # Redis restarting:
                    log.warning("pulse: cannot publish (%s); retrying", exc)  # next round
                except Exception:  # pulse must never take the stream down
                    log.exception("pulse publish failed")
                last_publish = time.monotonic()
                if (time.monotonic() - last_flush >= self.settings.flush_interval
                        and (flushing is None or flushing.done())):
                    last_flush = time.monotonic()
                    flushing = asyncio.create_task(self._flush_logged(), name="pulse-flush")
        finally:
            if flushing is not None:
                with contextlib.suppress(Exception):
                    await asyncio.shield(flushing)

    async def _flush_logged(self) -> None:
        try:
            await self.flush()
        except Exception:
            log.exception("pulse flush failed")

    async def _follow(self) -> None:
        """Not the aggregator: open the pulse channels this node's clients may join (the
        aggregator's state, or an empty picture until it has published)."""
        content = self.scenes.content
        for market in content.markets if content else ():
            if not self.hub.has_channel(pulse_channel(market)):
                await self.hub.open(pulse_channel(market), self._computed(market, False))

    async def _rotate_salt(self, now: float) -> bytes:
        day = datetime.fromtimestamp(now, UTC).date()
        if self._salt is None or self._salt[0] != day.isoformat():
            self._salt = (day.isoformat(),
                          await db.call(self.engine, database.day_salt, self.engine,
                                        day.isoformat()))
            start = datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()
            self._salt_span = (start, start + 86400.0)
        return self._salt[1]

    async def _take_over(self) -> None:
        """Become the aggregator: rebuild today's windows from the database (raw events
        within retention, stored minutes before them) and take the transport's cursor."""
        cursor = await self.transport.cursor()
        now = self.clock()
        # Whole minutes only: raw events of the minute retention cuts into may be pruned.
        cutoff = math.ceil((now - self.settings.retention) / 60) * 60
        since = datetime.fromtimestamp(cutoff, UTC)
        self.markets.clear()
        self._slow.clear()
        self._events = []
        self.cluster_devices = DeviceLimiter(self.settings.device_rate,
                                             self.settings.device_burst)
        content = self.scenes.content
        starts = {}  # market -> start of its local day, if before the raw events
        for market in content.markets if content else ():
            pulse = self.market_pulse(market)
            start, _ = day_bounds(pulse.local_day(now), pulse.tz)
            if start < since:
                starts[market] = start

        def read() -> tuple[list, set, dict]:
            events = database.events_since(self.engine, since)
            stored = database.stored_minutes(self.engine, since)
            older = {m: database.minutes(self.engine, m, start, since, 0)
                     for m, start in starts.items()}
            return events, stored, older

        events, stored, older = await db.call(self.engine, read)
        for market, rows in older.items():
            pulse = self.market_pulse(market)
            for row in rows:
                pulse.add_history(now, row.scope, row.scope_id, database.row_counts(row),
                                  row.devices)
        recent = now - REPLAY_OVERLAP
        self._replayed = set()
        for event in events:
            at = event.at if event.at.tzinfo else event.at.replace(tzinfo=UTC)
            pulse = self.market_pulse(event.market)
            if pulse.local_day(at.timestamp()) == pulse.local_day(now):
                pulse.add(at.timestamp(), event.device, event.display, event.zone,
                          event.kind, event.dwell, event.recipe)
            if at.timestamp() >= recent:
                self._replayed.add((event.device, at))
        self._replayed_until = now + REPLAY_OVERLAP
        # Minutes already stored stay stored; the others (the minute the previous
        # aggregator died in) are written when they close.
        for market, pulse in self.markets.items():
            pulse.drop_minutes({(t, s, i) for m, t, s, i in stored if m == market})
        self._cursor = cursor
        self.terms += 1

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
        channel = display_channel(market, display)
        if self.hub.has_channel(channel) and recipe in shown_recipes(
                self.hub.snapshot(channel)[2]):
            return None
        if recipe in self.recipe_names(market):
            return None
        return ("unknown_recipe", f"no published recipe {recipe!r} in this market")

    # ---- the stream's hook -----------------------------------------------------------

    def accept(self, message: Reaction | Dwell) -> tuple[str, str] | None:
        """Take a reaction or dwell report for counting, or say why not (the connection has
        already checked that the visitor joined this display's channel)."""
        started = time.thread_time()
        refusal = self._accept(message)
        if refusal is not None:
            self.stats[f"refused_{refusal[0]}"] += 1
        self.cpu["accept"] += time.thread_time() - started
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
        stale = not self._salt_span[0] <= now < self._salt_span[1]
        if stale and (self._rotating is None or self._rotating.done()):
            # Midnight UTC passed: a new salt is made off the loop (once); until it is
            # there, the old one goes on for a moment.
            self._rotating = asyncio.get_running_loop().create_task(
                    self._rotate_salt(now))
        assert self._salt is not None
        device = hmac.digest(self._salt[1], message.device.encode(), "sha256")[:8].hex()
        rid = message.id if isinstance(message, Reaction) else None
        if rid is not None and (device, rid) in self.accepted_ids:
            self.stats["duplicate_reaction"] += 1  # a resend: acknowledged, not counted
            return None
        if not self.devices.take(device, now):
            return ("rate_limited", "this device is reacting too fast; try again in a moment")
        if rid is not None:
            self.accepted_ids.add((device, rid), now)
        recipe = message.recipe if isinstance(message, Reaction) else None
        self.stats[f"accepted_{kind}"] += 1
        if recipe is not None:
            self.stats["accepted_recipe"] += 1
        event: Event = {"market": message.market, "display": display.id, "zone": display.zone,
                        "kind": kind, "dwell": dwell, "recipe": recipe, "device": device,
                        "at": now}
        if rid is not None:
            event["rid"] = rid
        self.transport.send(event)
        if isinstance(message, Reaction) and message.text and message.text.strip():
            text, flags = sanitize_feedback(message.text)
            if text:
                self.stats["feedback_held"] += 1
                if flags:
                    self.stats["feedback_sanitized"] += 1
                self._feedback.append({"market": message.market, "display": display.id,
                                       "kind": kind, "text": text, "flags": "; ".join(flags),
                                       "status": "held",
                                       "created_at": datetime.fromtimestamp(now, UTC)})
        return None

    def ingest(self, event: Event) -> None:
        """The aggregator counts one accepted event (from any node)."""
        try:
            at, device = float(event["at"]), str(event["device"])
            market, kind = str(event["market"]), str(event["kind"])
            display, zone = str(event["display"]), str(event["zone"])
            dwell, recipe = event.get("dwell"), event.get("recipe")
            if kind != "dwell" and kind not in KINDS:
                raise ValueError(kind)
        except (KeyError, TypeError, ValueError):
            self.stats["malformed_event"] += 1
            return
        rid = event.get("rid")
        if isinstance(rid, str):
            if (device, rid) in self.counted_ids:  # resent through another node
                self.stats["duplicate_reaction"] += 1
                return
            self.counted_ids.add((device, rid), at)
        stamp = datetime.fromtimestamp(at, UTC)
        if self._replayed and (device, stamp) in self._replayed:
            self._replayed.discard((device, stamp))
            self.stats["replayed_skipped"] += 1
            return
        if self.transport.distributed and not self.cluster_devices.take(device, at):
            # Over the device's budget across nodes (each node saw less than its limit).
            self.stats["cluster_rate_limited"] += 1
            return
        try:
            self.market_pulse(market).add(at, device, display, zone, kind, dwell, recipe)
        except KeyError:  # a dwell value that is not a bucket (a node of another version)
            self.stats["malformed_event"] += 1
            return
        self.stats["aggregated"] += 1
        self._events.append({"market": market, "display": display, "zone": zone,
                             "kind": kind, "dwell": dwell, "recipe": recipe, "device": device,
                             "at": stamp})

    # ---- publishing and storing --------------------------------------------------------

    def state(self, market: str, live: bool = False) -> dict:
        """The k-anonymous picture. `live`: as on the channel, where the slow windows are
        refreshed every `slow_interval` seconds; otherwise everything is current. On a node
        that is not the aggregator: the channel's state (what the aggregator published)."""
        if self.transport.distributed and not self.leading:
            channel = pulse_channel(market)
            if self.hub.has_channel(channel):
                state = self.hub.snapshot(channel)[2]
                if state.get("windows"):
                    return state
        return self._computed(market, live)

    def _computed(self, market: str, live: bool) -> dict:
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
            # Timed without the hub's part (with Redis its await lets other tasks run).
            started = time.thread_time()
            state = self._computed(market, live=True)
            self.cpu["publish"] += time.thread_time() - started
            if await self.hub.publish(pulse_channel(market), state) is not None:
                self.stats["published"] += 1
            started = time.thread_time()
            for listener in self._listeners:
                listener(market)
            self.cpu["publish"] += time.thread_time() - started
        started = time.thread_time()
        now = self.clock()
        if self._replayed and now > self._replayed_until:
            self._replayed = set()
        self.devices.prune(now)
        self.cluster_devices.prune(now)
        self.cpu["publish"] += time.thread_time() - started

    async def flush(self, everything: bool = False) -> None:
        """Write held feedback (every node) and, on the aggregator, buffered raw events and
        closed minutes (all of them with `everything`, at shutdown); prune old events; then
        move the transport's cursor past what was written."""
        async with self._flush_lock:
            started = time.thread_time()
            held, self._feedback = self._feedback, []
            leading = self.leading
            events, closed, cursor = [], {}, self._cursor
            now = self.clock()
            if leading:
                events, self._events = self._events, []
                closed = {m: p.closed_minutes(now, everything) for m, p in self.markets.items()}
            before = datetime.fromtimestamp(now - self.settings.retention, UTC)

            def write() -> None:
                begun = time.thread_time()
                database.hold_feedback(self.engine, held)
                if leading:
                    database.add_events(self.engine, events)
                    for market, rows in closed.items():
                        if rows:
                            database.add_minutes(self.engine, market, rows)
                    database.prune_events(self.engine, before)
                self.cpu["write"] += time.thread_time() - begun

            self.cpu["flush"] += time.thread_time() - started
            await db.call(self.engine, write)
            if leading:
                await self.transport.save_cursor(cursor)
