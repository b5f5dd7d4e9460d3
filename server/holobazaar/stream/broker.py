"""The broker interface behind the hub (implemented by broker_memory.py and
broker_redis.py): it decides the order of each channel's log and keeps its bounded
history. The hub only asks it to open a channel, append an entry and replay history; the
broker delivers every appended entry back to the hub (to every node's hub, for a
distributed broker), and that delivery is what reaches clients."""

from __future__ import annotations

import secrets
import time
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


class BrokerUnavailable(RuntimeError):
    """The broker's shared store (Redis) cannot be reached: nothing was appended or locked.
    What was committed elsewhere (the database) stays committed; the displays catch up when
    the store is back (every node republishes from the database on reconnect, and the
    reconciler's sweep compares every state)."""


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
