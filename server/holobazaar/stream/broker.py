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

# Live aggregate channels (market/<m>/pulse) are rewritten every second and their snapshot
# is small: a client that missed more than this resumes by snapshot, and the history does
# not hold ten minutes of patches nobody will replay.
AGGREGATE_HISTORY = 30


def history_limit(channel: str, default: int) -> int:
    """Entries of history a channel keeps."""
    return min(default, AGGREGATE_HISTORY) if channel.endswith("/pulse") else default


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
    # Set by the hub on delivery: the frame's bytes (shared by every connection), the
    # channel state after this entry, and the channel's payload bytes up to it.
    wire: Any = None
    after: Any = None
    total: int = 0
    delivered: float = 0.0  # time.monotonic() when this node's hub got it


@dataclass(slots=True)
class Head:
    epoch: str
    offset: int
    state: dict


Deliver = Callable[[Entry], None]

# A distributed broker delivers an entry of this type (epoch "", offset -1) for each open
# channel when its shared log was lost (Redis restarted or flushed): the hub re-opens the
# channel, which starts a new epoch, and sends its subscribers a snapshot.
LOST = "lost"


class Conflict(Exception):
    """append(): the channel's head moved on (another node appended first) or was lost;
    the caller re-diffs against `head` (re-opened when lost) and tries again."""

    def __init__(self, head: Head | None) -> None:
        super().__init__("channel head moved" if head else "channel log lost")
        self.head = head


class Broker(Protocol):
    async def start(self, deliver: Deliver) -> None: ...

    async def close(self) -> None: ...

    async def open(self, channel: str, state: dict) -> Head:
        """The channel's current head; creates the channel at offset 0 with `state`."""

    async def append(self, channel: str, type: str, data: Any, state: dict,
                     base: tuple[str, int] | None = None) -> Entry:
        """Append after the current head (`state` is the channel state once applied).
        With `base` (epoch, offset) a distributed broker raises Conflict when the head is
        elsewhere: the patch was diffed against a state that is no longer current."""

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
            self._logs[channel] = deque(maxlen=history_limit(channel, self.history_size))
        return head

    async def append(self, channel: str, type: str, data: Any, state: dict,
                     base: tuple[str, int] | None = None) -> Entry:
        # One event loop, synchronous delivery: the hub's base is always the head.
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


def create_broker(url: str, history_size: int, history_ttl: float,
                  prefix: str = "holobazaar:") -> Broker:
    if url.startswith("memory://"):
        return InProcessBroker(history_size, history_ttl)
    from holobazaar.config import check_broker_url
    from holobazaar.stream.redis_broker import RedisBroker

    return RedisBroker(check_broker_url(url), history_size, history_ttl, prefix=prefix)
