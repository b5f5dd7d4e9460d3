"""A channel as the hub keeps it (head, recent entries with their states, subscribers and
followers, the fan-out caches) and the subscriber protocols; hub.py and fanout.py share it."""

from __future__ import annotations

import asyncio
import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeGuard

from holobazaar.canonical import state_hash
from holobazaar.stream.broker import Entry
from holobazaar.stream.wire import Wire

RECENT = 1024  # entries (with the state after each) kept to coalesce and check heartbeats


class Subscriber(Protocol):
    def send_frame(self, frame: str) -> None:
        """Queue a pre-encoded frame; must not block (a slow subscriber drops itself)."""


class Follower(Protocol):
    """A subscriber that takes raw WebSocket frame bytes and tells when it is backed up
    (its `raw_frames` is True)."""

    raw_frames: bool
    wbits: int  # shared permessage-deflate window (0: not negotiated)
    limit: int  # bytes it may owe while backed up before it is dropped

    def send_frame(self, frame: str) -> None: ...

    def write(self, data: bytes) -> None:
        """Write frames now (never blocks)."""

    def writable(self) -> bool:
        """False while its transport is over the high-water mark."""

    def buffered(self) -> int:
        """Bytes waiting in its transport."""

    def overflow(self) -> None:
        """It owes more than `limit`: close it (1013); it resumes from its offset."""


class PublishGuard(Protocol):
    """Checks a state on its way into a channel, before the hub accepts it (a domain's
    rules, e.g. the inventory's: no wrong price leaves the server). `Hub.publish` runs it
    under the channel's lock right before the append, so what it checked is what goes
    out; it runs on the hot change path: must be quick and do no I/O (it records what it
    finds in the background)."""

    def check(self, channel: str, state: dict) -> dict:
        """The state to publish: `state` itself when it is right, else a corrected one."""


def follows(subscriber: Subscriber) -> TypeGuard[Follower]:
    return getattr(subscriber, "raw_frames", False) is True


def encode(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


def entry_message(entry: Entry) -> dict[str, Any]:
    body = {"type": entry.type, "channel": entry.channel, "epoch": entry.epoch,
            "offset": entry.offset}
    if entry.type == "patch":
        body["ops"] = entry.data
    else:
        body.update(entry.data)
    return body


@dataclass
class Channel:
    name: str
    epoch: str
    offset: int
    state: dict
    subscribers: set[Subscriber] = field(default_factory=set)
    # Subscribers that take text frames one by one (not followers).
    plain: set[Subscriber] = field(default_factory=set)
    # Followers and their positions: the last offset written to each.
    followers: dict[Follower, int] = field(default_factory=dict)
    # Subscribers resuming: live entries that arrive while their history is being read.
    pending: dict[Subscriber, list[Entry]] = field(default_factory=dict)
    # The last `window` entries (entry.after: the state after it); base_*: the state just
    # before the first of them. Old states share their untouched parts (statepatch), but
    # an aggregate channel's states share almost nothing, so it keeps as few as its broker
    # history (history_limit): with 1,024 pulse states the server grew ~70 KB/s for 17 min.
    window: int = RECENT
    recent: deque[Entry] = field(default_factory=deque)
    base_offset: int = 0
    base_state: dict = field(default_factory=dict)
    base_total: int = 0
    total: int = 0  # payload bytes of all entries so far (what a follower owes)
    hashes: dict[int, str] = field(default_factory=dict)
    snapshot_wire: tuple[str, int, Wire] | None = None
    # Catch-up bytes per (position, deflate window, merged), valid while the head is
    # `cache_head`.
    cache_head: int = -1
    wire_cache: dict[tuple[int, int, bool], bytes] = field(default_factory=dict)
    parts_cache: dict[tuple[int, bool], list[Wire] | None] = field(default_factory=dict)
    sweeping: bool = False
    again: bool = False
    sweep_queue: list[Follower] = field(default_factory=list)
    sweep_index: int = 0
    sweep_started: float = 0.0  # when the pass began (perf_counter)
    sweep_from: int = 0  # the head offset when the pass began
    behind: bool = False  # the last pass was paced: the next one merges every backlog
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # Distributed broker only: set on every delivery; entries held while re-reading the head.
    advanced: asyncio.Event = field(default_factory=asyncio.Event)
    resync: asyncio.Task | None = None
    held: list[Entry] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.reset_window()

    def reset_window(self) -> None:
        """Forget recent entries (a new head was adopted): the window starts here."""
        self.recent.clear()
        self.base_offset, self.base_state, self.base_total = self.offset, self.state, self.total
        self.hashes.clear()
        self.wire_cache.clear()
        self.parts_cache.clear()
        self.cache_head = -1

    def push(self, entry: Entry) -> None:
        self.recent.append(entry)
        if len(self.recent) > self.window:
            old = self.recent.popleft()
            self.base_offset, self.base_state, self.base_total = old.offset, old.after, old.total
            self.hashes.pop(old.offset - 1, None)

    def state_at(self, offset: int) -> dict | None:
        """The state at `offset` if it is within the recent window, else None."""
        if offset == self.offset:
            return self.state
        if offset == self.base_offset:
            return self.base_state
        if self.base_offset < offset < self.offset:
            return self.recent[offset - self.base_offset - 1].after
        return None

    def total_at(self, offset: int) -> int | None:
        if offset == self.base_offset:
            return self.base_total
        if self.base_offset < offset <= self.offset:
            return self.recent[offset - self.base_offset - 1].total
        return None

    def hash_at(self, offset: int) -> str | None:
        """The state hash at `offset`, computed on first use (heartbeats, snapshots)."""
        digest = self.hashes.get(offset)
        if digest is None:
            state = self.state_at(offset)
            if state is None:
                return None
            digest = self.hashes[offset] = state_hash(state)
        return digest

    @property
    def current_hash(self) -> str:
        digest = self.hash_at(self.offset)
        assert digest is not None
        return digest


class UnknownChannel(KeyError):
    pass
