"""Shows on several nodes (docs/deploy.md): a performer's GO may reach any node, and the
show keeps running when the node running its clock dies.

* A runner's state (standby, pending and fired cues, pause) lives in Redis, one JSON value
  per show with a version, pending cues included (the database's `show_run` row, written
  as on one node, is what a restart of the whole cluster takes up). Every operation runs
  under a cluster lock for that show: load the shared state, operate (which emits through
  the hub as on one node), save, and tell the other nodes, which load it too (their zone
  states then carry the same show).
* The clock (sending each pending cue `lead_ms` before it starts) runs only on the node
  holding the `show-clock` lease. When that node dies, another takes the lease within
  the lease time, loads every show's state and continues from the current cue: cues that
  fell due meanwhile go out at once, with their original start times.
* Sync spread: clients report cue executions to whichever node they are on. The reports go
  to Redis (`<prefix>cuesync:<market>:<cue id>`, a hash session -> executed_at, next to
  its cue's start time, both expiring after `CUE_REPORTS_TTL`), so the console on any node
  shows the spread over the clients of every node.
* Devices: every node writes how many clients it has on each zone channel to Redis every
  second (`<prefix>zone-clients:<node>`, expiring after `ZONE_CLIENTS_TTL`); the console's
  `devices` adds up every live node's.
* Exactly once: a holder can die after appending a cue to the zone log but before saving
  the state. Before sending due cues the clock looks for their ids among the zone log's
  recent entries and only records, without sending again, the ones already there.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from holobazaar.channels import is_zone, zone_channel
from holobazaar.cluster import Cluster
from holobazaar.redis_connection import RedisConnection
from holobazaar.shows.models import Show
from holobazaar.shows.runner import Clock, Emit, Pending, ShowRunner
from holobazaar.shows.service import (
    REPORT_WINDOW_MS,
    REPORTS_PER_CUE,
    CueSync,
    ShowService,
)
from holobazaar.stream.broker_redis import channel_log_key
from holobazaar.stream.hub import Hub

log = logging.getLogger(__name__)

CLOCK_LEASE = "show-clock"
RECENT_ENTRIES = 200  # zone log entries searched for cues already sent
CUE_REPORTS_TTL = 3600  # seconds a cue's reports are kept after it was sent
ZONE_CLIENTS_INTERVAL, ZONE_CLIENTS_TTL = 1.0, 3  # seconds
ALIVE = "@alive"  # a field no channel name can be

# KEYS: the cue's meta hash (start_time, number), its reports hash. ARGV: cap, window ms,
# then session, executed_at pairs. Reports for an untracked cue, past the cap or far off
# the cue's start are dropped (as on one node).
_REPORT = """
local start = tonumber(redis.call('HGET', KEYS[1], 'start_time'))
if not start then return 0 end
local cap, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local n = redis.call('HLEN', KEYS[2])
local added = 0
for i = 3, #ARGV, 2 do
  local at = tonumber(ARGV[i + 1])
  if at and math.abs(at - start) <= window then
    if n < cap or redis.call('HEXISTS', KEYS[2], ARGV[i]) == 1 then
      n = n + redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
      added = added + 1
    end
  end
end
local ttl = redis.call('TTL', KEYS[1])
if added > 0 and ttl > 0 then redis.call('EXPIRE', KEYS[2], ttl) end
return added
"""


class SharedShows:
    """Built before the show service (which takes its runners, reports and client counts:
    holobazaar.shows.service.ShowCoordination); the service then attaches itself."""

    def __init__(self, cluster: Cluster, redis: RedisConnection, hub: Hub) -> None:
        self.cluster, self.connection = cluster, redis
        self.redis = redis.client
        self.holding_clock = False
        self.reports = RedisCueReports(self.redis, redis.prefix)
        self.zone_clients = ZoneClients(self.redis, redis.prefix, cluster.node, hub)
        self._service: ShowService | None = None

    def attach(self, service: ShowService) -> None:
        """The show service of this node: from now on its shows are shared."""
        self._service = service
        self.cluster.periodic("zone-clients", ZONE_CLIENTS_INTERVAL, self.zone_clients.publish)
        self.cluster.listen("show", self._on_changed)
        self.cluster.singleton(CLOCK_LEASE, self._clock_duty)

    @property
    def service(self) -> ShowService:
        assert self._service is not None, "the show service attaches itself when built"
        return self._service

    async def count_clients(self, channels: list[str]) -> int:
        return await self.zone_clients.count(channels)

    def key(self, market: str, show: str) -> str:
        return self.connection.key(f"show:{market}:{show}")

    @property
    def index_key(self) -> str:
        return self.connection.key("shows")

    def make_runner(self, market: str, show: Show, emit: Emit, clock: Clock | None,
                    lead_ms: float) -> SharedShowRunner:
        return SharedShowRunner(self, market, show, emit, clock, lead_ms)

    def _runner(self, market: str, show: str) -> SharedShowRunner:
        runner = self.service.runner(market, show)
        assert isinstance(runner, SharedShowRunner)  # made by make_runner
        return runner

    # ---- shared state --------------------------------------------------------------

    async def load(self, runner: SharedShowRunner) -> None:
        raw = await self.redis.get(self.key(runner.market, runner.show.id))
        if raw is not None:
            runner.adopt_shared(json.loads(raw))

    async def save(self, runner: SharedShowRunner) -> None:
        runner.version += 1
        key = self.key(runner.market, runner.show.id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(key, json.dumps(runner.shared_state()))
            pipe.sadd(self.index_key, f"{runner.market}\n{runner.show.id}")
            await pipe.execute()
        await self.cluster.notify("show", {"market": runner.market, "show": runner.show.id})

    @contextlib.asynccontextmanager
    async def exclusive(self, runner: SharedShowRunner) -> AsyncIterator[None]:
        """One node at a time operates on a show, on its latest state."""
        # Held for one operation (milliseconds); a holder that dies holding it delays the
        # next clock holder by at most the lease time.
        async with self.cluster.lock(f"show:{runner.market}:{runner.show.id}",
                                     timeout=self.cluster.lease_ttl):
            await self.load(runner)
            try:
                yield
            finally:
                await self.save(runner)
                self._mark_zones(runner)

    def _mark_zones(self, runner: ShowRunner) -> None:
        """This node's zone states carry the runner's show too (as `_emit` does)."""
        for zone in self.service.zones(runner):
            self.service.zone_runner[(runner.market, zone)] = runner

    async def _on_changed(self, data: dict | None) -> None:
        """Another node changed a show (None: reload every show we know of)."""
        if data is None:
            await self.load_all()
            return
        try:
            runner = self._runner(str(data["market"]), str(data["show"]))
        except Exception:  # a show this node does not have (content differs): skip it
            log.warning("shows: ignoring a change to unknown show %r", data)
            return
        async with runner.lock:
            await self.load(runner)
        self._mark_zones(runner)
        runner._wake.set()

    async def load_all(self) -> None:
        # redis-py types a command for its sync and async clients at once (set | Awaitable).
        for member in await self.redis.smembers(self.index_key):  # type: ignore[misc]
            market, _, show = member.partition("\n")
            with contextlib.suppress(Exception):
                runner = self._runner(market, show)
                async with runner.lock:
                    await self.load(runner)
                self._mark_zones(runner)
                runner._wake.set()

    # ---- the clock ------------------------------------------------------------------

    async def _clock_duty(self) -> None:
        self.holding_clock = True
        try:
            await self.load_all()
            for runner in list(self.service.runners.values()):
                runner.start()
            await asyncio.Event().wait()
        finally:
            self.holding_clock = False
            for runner in list(self.service.runners.values()):
                await runner.close()

    async def already_sent(self, runner: ShowRunner) -> set[str]:
        ids: set[str] = set()
        for zone in self.service.zones(runner):
            log_key = channel_log_key(self.connection, zone_channel(runner.market, zone))
            rows = await self.redis.xrevrange(log_key, count=RECENT_ENTRIES)
            for _, fields in rows:
                if fields.get("type") == "cue":
                    with contextlib.suppress(ValueError, KeyError, TypeError):
                        ids.add(json.loads(fields["data"])["cue"]["id"])
        return ids


class SharedShowRunner(ShowRunner):
    def __init__(self, shared: SharedShows, *args: Any) -> None:
        super().__init__(*args)
        self.shared = shared
        self.version = 0

    # ---- state as JSON ---------------------------------------------------------------

    def shared_state(self) -> dict[str, Any]:
        seq = next(self._seq)
        self._seq = itertools.count(seq)
        return {"version": self.version, "standby": self.standby, "serial": self.serial,
                "stopped": self.stopped, "paused_at": self.paused_at,
                "started_at": self.started_at, "seq": seq, "fired": self.fired,
                "last_cue": self.last_cue,
                "pending": [[p.send_at, p.seq, p.cue] for p in self.pending]}

    def adopt_shared(self, state: dict[str, Any]) -> None:
        if state["version"] < self.version:
            return  # an older copy than what this node already has
        self.version = state["version"]
        self.standby, self.serial = state["standby"], state["serial"]
        self.stopped, self.paused_at = state["stopped"], state["paused_at"]
        self.started_at, self.fired = state["started_at"], state["fired"]
        self.last_cue = state["last_cue"]
        self._seq = itertools.count(state["seq"])
        self.pending = [Pending(send_at, seq, cue) for send_at, seq, cue in state["pending"]]
        heapq.heapify(self.pending)

    # ---- operations: any node, one at a time, on the shared state ---------------------

    async def go(self, expect: str | None = None) -> dict:
        async with self.shared.exclusive(self):
            return await super().go(expect)

    async def standby_cue(self, number: str | None = None) -> None:
        async with self.shared.exclusive(self):
            await super().standby_cue(number)

    async def pause(self) -> None:
        async with self.shared.exclusive(self):
            await super().pause()

    async def resume(self) -> None:
        async with self.shared.exclusive(self):
            await super().resume()

    async def stop(self, panic: bool = False) -> None:
        async with self.shared.exclusive(self):
            await super().stop(panic)

    # ---- the clock: only on the lease holder -----------------------------------------

    def start(self) -> None:
        if self.shared.holding_clock:
            super().start()

    async def _send_when_due(self) -> None:
        async with self.shared.exclusive(self), self.lock:
            await self._skip_sent()
            await self._send_due()

    async def _skip_sent(self) -> None:
        """Cues a previous clock holder appended but could not record before it died."""
        now = self.clock.now()
        if not self.pending or self.pending[0].send_at > now:
            return
        sent = await self.shared.already_sent(self)
        while self.pending and self.pending[0].send_at <= now and (
                self.pending[0].cue["id"] in sent):
            cue = heapq.heappop(self.pending).cue
            self.fired.append(cue)
            self.last_cue = cue


class RedisCueReports:
    """Cue execution reports of every node's clients, in Redis. A heartbeat's report is
    buffered and written by one task per node (a batch per cue, one script call each), so
    a heartbeat never waits for Redis."""

    def __init__(self, redis: Any, prefix: str) -> None:
        self.redis, self.prefix = redis, prefix
        self._pending: dict[tuple[str, str], dict[str, float]] = {}
        self._writer: asyncio.Task | None = None
        self._report = redis.register_script(_REPORT)

    def keys(self, market: str, cue_id: str) -> tuple[str, str]:
        base = f"{self.prefix}cuesync:{market}:{cue_id}"
        return base, f"{base}:reports"

    async def track(self, market: str, cue: dict) -> None:
        meta, reports = self.keys(market, cue["id"])
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(reports)
            pipe.hset(meta, mapping={"start_time": repr(float(cue["start_time"])),
                                     "number": str(cue["number"])})
            pipe.expire(meta, CUE_REPORTS_TTL)
            await pipe.execute()

    def report(self, market: str, session: str, cue_id: str, executed_at: float) -> None:
        self._pending.setdefault((market, cue_id), {})[session] = executed_at
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write(),
                                                                  name="cue-reports")

    async def _write(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, {}
            for (market, cue_id), reports in batch.items():
                args: list[Any] = [REPORTS_PER_CUE, REPORT_WINDOW_MS]
                for session, at in reports.items():
                    args += [session, repr(float(at))]
                try:
                    await self._report(keys=list(self.keys(market, cue_id)), args=args)
                except Exception as exc:  # reports are best effort: the show goes on
                    log.warning("shows: cannot store cue reports (%s)", exc)

    async def flush(self) -> None:
        if self._writer is not None:
            await asyncio.gather(self._writer, return_exceptions=True)

    async def summary(self, market: str, cue_id: str) -> dict[str, Any] | None:
        await self.flush()  # this node's own reports first
        meta_key, reports_key = self.keys(market, cue_id)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(meta_key)
            pipe.hgetall(reports_key)
            meta, reports = await pipe.execute()
        if not meta:
            return None
        sync = CueSync(cue_id, meta.get("number", ""), float(meta["start_time"]),
                       {session: float(at) for session, at in reports.items()})
        return sync.summary()



class ZoneClients:
    """How many clients each node has on each zone channel, kept in Redis by each node for
    itself; a node that stops writing (dead) drops out when its hash expires."""

    def __init__(self, redis: Any, prefix: str, node: str, hub: Hub) -> None:
        self.redis, self.node, self.hub = redis, node, hub
        self.nodes_key = f"{prefix}zone-clients"
        self.prefix = f"{prefix}zone-clients:"

    def own(self) -> dict[str, int]:
        return {name: len(channel.subscribers)
                for name, channel in self.hub.channels.items() if is_zone(name)}

    async def publish(self) -> None:
        key = self.prefix + self.node
        counts = {ALIVE: 1, **self.own()}  # the hash exists while the node is alive
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            pipe.hset(key, mapping=counts)
            pipe.expire(key, ZONE_CLIENTS_TTL)
            pipe.sadd(self.nodes_key, self.node)
            await pipe.execute()

    async def count(self, channels: list[str]) -> int:
        own = self.own()
        total = sum(own.get(channel, 0) for channel in channels)  # this node's: live
        others = [n for n in await self.redis.smembers(self.nodes_key) if n != self.node]
        if not others or not channels:
            return total
        async with self.redis.pipeline(transaction=False) as pipe:
            for node in others:
                pipe.hmget(self.prefix + node, [ALIVE, *channels])
            rows = await pipe.execute()
        gone = []
        for node, (alive, *values) in zip(others, rows, strict=True):
            if alive is None:
                gone.append(node)  # its hash expired: it stopped (or lost Redis)
            total += sum(int(v) for v in values if v is not None)
        if gone:
            await self.redis.srem(self.nodes_key, *gone)
        return total
