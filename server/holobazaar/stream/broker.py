"""The broker behind the hub: it decides the order of each channel's log and keeps its
bounded history. The hub only asks it to open a channel, append an entry and replay
history; the broker delivers every appended entry back to the hub (to every node's hub,
for a distributed broker), and that delivery is what reaches clients."""

from __future__ import annotations

import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol


def new_epoch() -> str:
    return secrets.token_hex(6)


def now_ms() -> float:
    return time.time() * 1000.0


@dataclass(slots=True)
class Entry:
    """One step of a channel's log: a `patch` (JSON Patch ops) or a `cue` (show event)."""

    channel: str
    epoch: str
    offset: int
    type: str
    data: Any
    time: float = field(default_factory=now_ms)
    frame: str | None = None  # the encoded frame, made once by the hub on delivery


@dataclass(slots=True)
class Head:
    epoch: str
    offset: int
    state: dict


Deliver = Callable[[Entry], None]


class Broker(Protocol):
    async def start(self, deliver: Deliver) -> None: ...

    async def close(self) -> None: ...

    async def open(self, channel: str, state: dict) -> Head:
        """The channel's current head; creates the channel at offset 0 with `state`."""

    async def append(self, channel: str, type: str, data: Any, state: dict) -> Entry:
        """Append after the current head (`state` is the channel state once applied)."""

    async def history(self, channel: str, epoch: str, after: int) -> list[Entry] | None:
        """Entries with offset > after, or None when history no longer reaches back."""


class InProcessBroker:
    """Single-process broker: order is the event loop's order; history lives in memory and
    dies with the process (a restart starts new epochs, so clients resync by snapshot)."""

    def __init__(self, history_size: int = 1000, history_ttl: float = 600.0) -> None:
        self.history_size = history_size
        self.history_ttl_ms = history_ttl * 1000.0
        self._deliver: Deliver | None = None
        self._heads: dict[str, Head] = {}
        self._logs: dict[str, deque[Entry]] = {}

    async def start(self, deliver: Deliver) -> None:
        self._deliver = deliver

    async def close(self) -> None:
        self._deliver = None

    async def open(self, channel: str, state: dict) -> Head:
        head = self._heads.get(channel)
        if head is None:
            head = self._heads[channel] = Head(new_epoch(), 0, state)
            self._logs[channel] = deque(maxlen=self.history_size)
        return head

    async def append(self, channel: str, type: str, data: Any, state: dict) -> Entry:
        head = self._heads[channel]
        head.offset += 1
        head.state = state
        entry = Entry(channel, head.epoch, head.offset, type, data)
        log = self._logs[channel]
        log.append(entry)
        self._trim(log)
        if self._deliver is not None:
            self._deliver(entry)
        return entry

    async def history(self, channel: str, epoch: str, after: int) -> list[Entry] | None:
        head = self._heads.get(channel)
        if head is None or head.epoch != epoch or after > head.offset or after < 0:
            return None
        log = self._logs[channel]
        self._trim(log)
        if after == head.offset:
            return []
        if not log or log[0].offset > after + 1:
            return None  # the oldest entry we still have is past what the client needs
        return [e for e in log if e.offset > after]

    def _trim(self, log: deque[Entry]) -> None:
        cutoff = now_ms() - self.history_ttl_ms
        while log and log[0].time < cutoff:
            log.popleft()


def create_broker(url: str, history_size: int, history_ttl: float) -> Broker:
    if url.startswith("memory://"):
        return InProcessBroker(history_size, history_ttl)
    raise ValueError(f"unsupported broker URL {url!r}")
