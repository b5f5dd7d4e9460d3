"""Simulated show devices for the sync test and bench/showsync.py: real WebSocket clients
whose network and clock are made worse on purpose, each with its own round-trip time (half
each way, plus a little jitter) and a skewed wall clock. Each estimates its clock offset
with the protocol's ping/pong (NTP's rule: keep the sample with the shortest round trip),
schedules a cue at `start_time - offset`, and records when it really ran it (the true
wall-clock instant, which only the simulation knows) and when it believes it ran it (the
server-time estimate it reports in its heartbeat)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from dataclasses import dataclass, field

import jsonpatch
import websockets

from holobazaar.canonical import state_hash


def wall_ms() -> float:
    return time.time() * 1000.0


@dataclass
class Execution:
    cue_id: str
    planned_ms: float  # real instant the device's clock will read start - offset (truth)
    true_ms: float  # real instant its timer actually ran (adds this machine's scheduling)
    estimated_ms: float  # server-time estimate the device reports
    early_ms: float  # how long before the cue's start the frame arrived (< 0: late)


@dataclass
class SimDevice:
    url: str
    rtt_ms: float
    skew_ms: float
    jitter_ms: float = 1.0
    rng: random.Random = field(default_factory=random.Random)
    offset_ms: float | None = None
    best_rtt: float | None = None
    executions: list[Execution] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.ws = None
        self.pongs: asyncio.Queue[tuple[dict, float]] = asyncio.Queue()
        self.cue_frames: asyncio.Queue[dict] = asyncio.Queue()
        self.channel_offset: dict[str, int] = {}
        self.states: dict[str, dict] = {}
        self._reader: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()

    def local_now(self) -> float:
        return wall_ms() + self.skew_ms

    def one_way(self) -> float:
        return max(0.0, self.rtt_ms / 2 + self.rng.uniform(-self.jitter_ms, self.jitter_ms))

    async def connect(self, channel: str) -> None:
        self.ws = await websockets.connect(self.url, max_size=None, open_timeout=20)
        self._reader = asyncio.create_task(self._read())
        await self.send({"type": "hello", "protocol": 1, "subscribe": [{"channel": channel}]})

    async def send(self, message: dict) -> None:
        await asyncio.sleep(self.one_way() / 1000.0)
        await self.ws.send(json.dumps(message))

    async def _read(self) -> None:
        loop = asyncio.get_running_loop()
        last = 0.0
        with contextlib.suppress(websockets.ConnectionClosed):
            async for raw in self.ws:
                # Delivered to "the app" one simulated one-way trip later, in order (TCP:
                # jitter never lets a frame overtake the one before it).
                last = max(last, loop.time() + self.one_way() / 1000.0)
                loop.call_at(last, self._arrive, json.loads(raw))

    def _arrive(self, message: dict) -> None:
        kind = message["type"]
        if "offset" in message and "channel" in message:
            self.channel_offset[message["channel"]] = message["offset"]
        if kind == "snapshot":
            self.states[message["channel"]] = message["state"]
        elif kind == "patch":
            self.states[message["channel"]] = jsonpatch.apply_patch(
                self.states[message["channel"]], message["ops"])
        if kind == "pong":
            self.pongs.put_nowait((message, self.local_now()))
        elif kind == "cue" and message["cue"]["event"] == "go":
            self.cue_frames.put_nowait(message)
            self._schedule(message["cue"])

    async def sync_clock(self, samples: int = 10, gap: float = 0.05) -> None:
        for _ in range(samples):
            await self.send({"type": "ping", "t0": self.local_now()})
            pong, t1 = await asyncio.wait_for(self.pongs.get(), 10)
            rtt = t1 - pong["t0"]
            if self.best_rtt is None or rtt < self.best_rtt:
                self.best_rtt = rtt
                self.offset_ms = pong["server_time"] + rtt / 2 - t1
            await asyncio.sleep(gap)

    def _schedule(self, cue: dict) -> None:
        assert self.offset_ms is not None, "sync the clock first"
        target_local = cue["start_time"] - self.offset_ms
        # Local clock = real + skew: the real instant at which this device's clock reads
        # the target is what the protocol decides; when the timer then runs depends on
        # the CPU of the machine the simulation shares with everything else.
        planned = target_local - self.skew_ms
        early = target_local - self.local_now()
        asyncio.get_running_loop().call_later(max(0.0, early) / 1000.0, self._execute,
                                              cue["id"], planned, early)

    def _execute(self, cue_id: str, planned: float, early: float) -> None:
        self.executions.append(Execution(cue_id, planned, wall_ms(),
                                         self.local_now() + self.offset_ms, early))

    async def report(self, channel: str) -> None:
        """The heartbeat a device sends after running a cue (its server-time estimate)."""
        last = self.executions[-1]
        await self.send({"type": "heartbeat", "channel": channel,
                         "offset": self.channel_offset[channel],
                         "state_hash": state_hash(self.states[channel]),
                         "cue": {"id": last.cue_id, "executed_at": last.estimated_ms}})

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader


def make_devices(url: str, count: int, seed: int = 7, max_rtt: float = 200.0,
                 max_skew: float = 2000.0) -> list[SimDevice]:
    rng = random.Random(seed)
    return [SimDevice(url, rtt_ms=rng.uniform(0, max_rtt),
                      skew_ms=rng.uniform(-max_skew, max_skew),
                      rng=random.Random(rng.random())) for _ in range(count)]


def spread(values: list[float], quantile: float = 0.99) -> float:
    """Width of the central `quantile` of the values (p99: 99% lie within it)."""
    from holobazaar.shows.service import span

    return span(sorted(values), quantile)
