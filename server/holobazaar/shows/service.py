"""The show service: one runner per show, its output through the hub, and the sync spread
clients report.

A runner's output goes to its zone channels (a market-wide show: every zone of the
market): first the zone state with the show's state (so a snapshot lets a late joiner join
mid-cue), then the `cue` frame (hub.send_event). Clients report in heartbeats when they
executed a cue; the spread of those instants is what the performer console shows. The
reports are kept by a `CueReports` store: in this process (`LocalCueReports`), or in Redis
when several nodes serve the show's clients (holobazaar.shows.clustered), so the spread is
measured over the clients of every node whichever node the console asks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from redis.exceptions import RedisError
from sqlalchemy.engine import Engine

from holobazaar import db
from holobazaar.channels import display_channel, market_of, zone_channel
from holobazaar.scenes.authoring import preview_channel
from holobazaar.scenes.service import SceneService
from holobazaar.shows import run_state, timing
from holobazaar.shows.models import Show
from holobazaar.shows.runner import (
    Clock,
    Emit,
    ShowError,
    ShowRunner,
    SystemClock,
    cue_body,
)
from holobazaar.stream.hub import Hub

log = logging.getLogger(__name__)

CUES_TRACKED = 50  # recent cues whose execution reports we keep
REPORTS_PER_CUE = 20000
REPORT_WINDOW_MS = 10_000  # reports further from the cue's start are ignored


@dataclass
class CueSync:
    """Execution instants clients reported for one cue (server-time estimates, ms)."""

    id: str
    number: str
    start_time: float
    reports: dict[str, float] = field(default_factory=dict)  # session -> executed_at

    def summary(self) -> dict[str, Any]:
        values = sorted(self.reports.values())
        out: dict[str, Any] = {"id": self.id, "number": self.number,
                               "start_time": self.start_time, "devices": len(values)}
        if values:
            out.update(spread_ms=round(values[-1] - values[0], 1),
                       p99_spread_ms=round(span(values, 0.99), 1),
                       mean_late_ms=round(sum(values) / len(values) - self.start_time, 1))
        return out


def accepted(executed_at: float, start_time: float) -> bool:
    """A client far off the cue's start (a stale or made-up report) says nothing about sync;
    it is ignored rather than widening the spread."""
    return abs(executed_at - start_time) <= REPORT_WINDOW_MS



class CueReports(Protocol):
    async def track(self, market: str, cue: dict) -> None:
        """A cue was sent (its `go` event): reports for its id count from now on."""
        ...

    def report(self, market: str, session: str, cue_id: str, executed_at: float) -> None:
        """A client's report (called from its heartbeat: must not block)."""
        ...

    async def summary(self, market: str, cue_id: str) -> dict[str, Any] | None:
        ...


class LocalCueReports:
    """The reports of this process's clients, for the last `CUES_TRACKED` cues."""

    def __init__(self) -> None:
        self.cues: OrderedDict[tuple[str, str], CueSync] = OrderedDict()

    async def track(self, market: str, cue: dict) -> None:
        self.cues[(market, cue["id"])] = CueSync(cue["id"], cue["number"], cue["start_time"])
        while len(self.cues) > CUES_TRACKED:
            self.cues.popitem(last=False)

    def report(self, market: str, session: str, cue_id: str, executed_at: float) -> None:
        tracked = self.cues.get((market, cue_id))
        if tracked is None or len(tracked.reports) >= REPORTS_PER_CUE:
            return
        if accepted(executed_at, tracked.start_time):
            tracked.reports[session] = executed_at

    async def summary(self, market: str, cue_id: str) -> dict[str, Any] | None:
        tracked = self.cues.get((market, cue_id))
        return tracked.summary() if tracked else None


def span(values: list[float], quantile: float) -> float:
    """Width of the central `quantile` of sorted values (p99: drop the 0.5% at each end),
    what "within N ms of each other for 99% of devices" means."""
    if len(values) < 2:
        return 0.0
    cut = (1.0 - quantile) / 2.0
    lo = values[int(cut * (len(values) - 1))]
    hi = values[round((1.0 - cut) * (len(values) - 1))]
    return hi - lo


class ShowCoordination(Protocol):
    """How several nodes share the shows (holobazaar.shows.clustered.SharedShows): built
    before the show service, which takes its runners, reports and client counts."""

    @property
    def reports(self) -> CueReports: ...

    def make_runner(self, market: str, show: Show, emit: Emit, clock: Clock | None,
                    lead_ms: float) -> ShowRunner: ...

    async def count_clients(self, channels: list[str]) -> int:
        """Clients on these channels, added up over every node."""
        ...

    def attach(self, service: ShowService) -> None:
        """The show service it coordinates (which calls this once, when built)."""
        ...


class ShowService:
    def __init__(self, scenes: SceneService, hub: Hub, lead_ms: float = 150.0,
                 clock: Clock | None = None, engine: Engine | None = None,
                 shared: ShowCoordination | None = None) -> None:
        self.scenes, self.hub, self.engine = scenes, hub, engine
        # Runner states to write (latest per show), by one writer task so rows are written
        # in order and a cue never waits for the database.
        self._unsaved: dict[tuple[str, str], run_state.RunRecord] = {}
        self._save_wanted = asyncio.Event()
        self._writer: asyncio.Task | None = None
        self.lead_ms, self.clock = lead_ms, clock
        self._rehearsals = 0
        self.runners: dict[tuple[str, str], ShowRunner] = {}
        self.zone_runner: dict[tuple[str, str], ShowRunner] = {}
        # Several nodes (`shared`): reports in Redis, clients counted over every node,
        # shared runners; one node: this process's own.
        self._reports: CueReports = shared.reports if shared else LocalCueReports()
        self._count_clients: Callable[[list[str]], Awaitable[int]] = (
            shared.count_clients if shared else self._local_clients)
        self._make_runner: Callable[[str, Show, Emit, Clock | None, float], ShowRunner] = (
            shared.make_runner if shared else ShowRunner)
        scenes.set_zone_show(self.zone_show)
        hub.add_cue_observer(self.on_report)
        if shared is not None:
            shared.attach(self)

    async def start(self) -> None:
        """Take up the runner states stored before a restart (shows that still exist)."""
        if self.engine is None:
            return
        for record in await db.call(self.engine, run_state.load_runs, self.engine):
            market = self.scenes.market(record.market)
            if market is None or record.show not in market.shows:
                continue
            self.runner(record.market, record.show).restore(record)
        self._writer = asyncio.create_task(self._write_loop(), name="show-state-writer")

    async def close(self) -> None:
        for runner in self.runners.values():
            await runner.close()
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
            await self._flush()

    def _persist(self, runner: ShowRunner) -> None:
        if self.engine is not None:
            self._unsaved[(runner.market, runner.show.id)] = runner.record()
            self._save_wanted.set()

    async def _write_loop(self) -> None:
        while True:
            await self._save_wanted.wait()
            self._save_wanted.clear()
            try:
                await self._flush()
            except Exception:  # the show goes on; the next change writes again
                log.exception("storing show state failed")

    async def _flush(self) -> None:
        if self._unsaved and self.engine is not None:
            records, self._unsaved = list(self._unsaved.values()), {}
            await db.call(self.engine, run_state.save_runs, self.engine, records)

    # ---- runners -------------------------------------------------------------------

    def shows(self, market: str) -> dict[str, Any]:
        content = self.scenes.market(market)
        if content is None:
            raise ShowError(404, f"no market {market!r}")
        return content.shows

    def runner(self, market: str, show_id: str) -> ShowRunner:
        """The show's runner, made on first use; a show file edited since is picked up
        when its runner is idle (a running show keeps the cues it started with)."""
        shows = self.shows(market)
        show = shows.get(show_id)
        if show is None:
            known = ", ".join(sorted(shows)) or "none"
            raise ShowError(404, f"market {market!r} has no show {show_id!r} (shows: {known})")
        key = (market, show_id)
        runner = self.runners.get(key)
        if runner is not None and runner.show != show and runner.status() in (
                "ready", "finished", "stopped"):
            self.runners.pop(key)
            self._forget(runner)
            runner.close_soon()
            runner = None
        if runner is None:
            runner = self._make_runner(market, show, self._emit, self.clock, self.lead_ms)
            runner.start()
            self.runners[key] = runner
        return runner

    def _forget(self, runner: ShowRunner) -> None:
        for key, current in list(self.zone_runner.items()):
            if current is runner:
                del self.zone_runner[key]

    def zones(self, runner: ShowRunner) -> list[str]:
        if runner.show.zone is not None:
            return [runner.show.zone]
        market = self.scenes.market(runner.market)
        return [z.id for z in market.market.zones] if market else []

    def zone_show(self, market: str, zone: str) -> dict | None:
        runner = self.zone_runner.get((market, zone))
        return runner.show_state() if runner is not None else None

    async def _emit(self, runner: ShowRunner, event: dict | None) -> None:
        self._persist(runner)
        zones = self.zones(runner)
        for zone in zones:
            self.zone_runner[(runner.market, zone)] = runner  # the zone's current show
        if event is not None:
            if event["event"] == "go":
                await self._reports.track(runner.market, event)
            # The cue frame first: it is what devices schedule by, and publishing the zone
            # state may wait for a scene reload. Devices run each cue id once, whichever
            # of the two brings it first.
            for zone in zones:
                await self.hub.send_event(zone_channel(runner.market, zone), "cue",
                                          {"cue": event})
        for zone in zones:
            await self.scenes.publish_zone(runner.market, zone)

    # ---- sync spread ---------------------------------------------------------------

    def on_report(self, channel: str, session: str, cue_id: str, executed_at: float) -> None:
        self._reports.report(market_of(channel), session, cue_id, executed_at)

    async def sync_summary(self, runner: ShowRunner) -> dict[str, Any] | None:
        """The spread of the reports for the show's last cue (every node's clients)."""
        last = runner.last_cue
        if last is None:
            return None
        try:
            return await self._reports.summary(runner.market, last["id"])
        except (RedisError, OSError) as exc:  # Redis restarting: unknown for now, not a 500
            log.warning("shows: cannot read cue reports (%s)", exc)
            return None

    async def devices(self, runner: ShowRunner) -> int:
        """Devices connected to the show's zone channels (several nodes: on every node)."""
        channels = [zone_channel(runner.market, z) for z in self.zones(runner)]
        try:
            return await self._count_clients(channels)
        except (RedisError, OSError) as exc:  # Redis restarting: this node's own for now
            log.warning("shows: cannot count other nodes' devices (%s)", exc)
            return await self._local_clients(channels)

    async def _local_clients(self, channels: list[str]) -> int:
        return sum(self.hub.subscriber_count(channel) for channel in channels)

    async def state(self, runner: ShowRunner) -> dict[str, Any]:
        """Everything the performer console shows."""
        last = runner.last_cue
        sync = await self.sync_summary(runner)
        now = runner.clock.now()
        started = runner.started_at
        reference = runner.paused_at if runner.paused_at is not None else now
        return {
            "market": runner.market, "server_time": round(now, 1),
            "lead_ms": runner.lead_ms, **runner.show_state(),
            "zone": runner.show.zone, "cue_list": runner.cue_list(),
            "elapsed_ms": round(max(0.0, reference - started), 1) if started else 0.0,
            "remaining_ms": round(runner.remaining_ms(), 1),
            "length_ms": timing.total_length_ms(runner.show),
            "devices": await self.devices(runner),
            "last_cue": {"id": last["id"], "number": last["number"],
                         "start_time": last["start_time"]} if last else None,
            "sync": sync,
        }

    # ---- rehearsal -----------------------------------------------------------------

    def preview_channels(self, market: str, show_id: str) -> list[str]:
        """The preview channels of the displays a show plays on (its zone's, or every
        zone's): where a rehearsal goes. Curators and performers only: never a visitor."""
        content = self.scenes.market(market)
        show = self.shows(market).get(show_id) if content is not None else None
        if content is None or show is None:
            raise ShowError(404, f"market {market!r} has no show {show_id!r}")
        return [preview_channel(market, d.id) for d in sorted(
            content.displays.values(), key=lambda d: d.id)
            if show.zone is None or d.zone == show.zone]

    async def rehearse(self, market: str, show_id: str, number: str,
                       draft: Show | None = None) -> dict[str, Any]:
        """Fire one cue (with its group) on the show's preview channels only, now plus the
        lead: a performer sees it on their own device; the live show, its runner and the
        zone channels visitors follow are untouched. `draft`: the show as being edited
        (checked by the caller), instead of the loaded one."""
        channels = self.preview_channels(market, show_id)
        show = draft or self.shows(market).get(show_id)
        assert show is not None
        index = timing.index_of(show, number)
        if index is None:
            known = ", ".join(c.number for c in show.cues)
            raise ShowError(404, f"show {show_id!r} has no cue {number!r} (cues: {known})")
        clock = self.clock or SystemClock()
        self._rehearsals += 1
        firings, _ = timing.sequence(show, index, clock.now() + self.lead_ms)
        cues = [cue_body(show, f, f"rehearsal-{self._rehearsals}") for f in firings
                if f.index == index]
        for channel in channels:
            if not self.hub.has_channel(channel):  # no draft yet: the published display
                source = display_channel(market, channel.rsplit("/", 1)[1])
                await self.hub.publish(channel, self.hub.snapshot(source)[2])
            for cue in cues:
                await self.hub.send_event(channel, "cue", {"cue": cue})
        return {"cues": [c["id"] for c in cues], "channels": channels,
                "start_time": cues[0]["start_time"]}
