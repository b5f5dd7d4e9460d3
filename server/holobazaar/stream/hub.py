"""The hub: one ordered log per channel and the only way anything reaches clients.

`publish(channel, state)` is the single entry point for changes: it diffs the new state
against the channel's current one (JSON Patch, RFC 6902), has the broker append the patch
with the next offset, and when the broker delivers the entry the hub encodes it once.

Fan-out (docs/protocol.md, "Fan-out and coalescing"): connections that write raw frames
(`Follower`s, the `/ws` fast path) are caught up by a sweep over the channel's followers
that runs in slices on the event loop. Each follower has a position (the last offset
written to it); catching up writes everything from there to the head in ONE write:
single entries as their shared frame, runs of two or more patches merged into one
`patch` frame (`from` = position, `offset` = head, ops = diff of the two states, shared
by every follower at the same position), cues always as themselves, in order. A follower
whose transport is over its high-water mark is skipped until it drains, then caught up
the same way; one that owes more than its limit is told to go (1013). Other subscribers
(`send_frame`) get every entry's text frame at once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeGuard

from holobazaar.canonical import state_hash
from holobazaar.channels import history_limit
from holobazaar.stream.broker import LOST, Broker, Conflict, Entry, Head
from holobazaar.stream.statepatch import apply_ops, diff
from holobazaar.stream.wire import Wire

log = logging.getLogger(__name__)

RECENT = 1024  # entries (with the state after each) kept to coalesce and check heartbeats
# Seconds of fan-out work before yielding to the event loop: a change request makes
# several loop round trips, each waiting for a slice; 4 -> 2 ms took its median at 50
# changes/s to 10,000 devices from 38 to 22 ms, at no measurable cost in CPU.
SWEEP_SLICE = 0.002
# A client whose oldest unsent change is older than this (the server is behind: more
# changes than one core fans out one by one), or whose transport backed up, gets its
# backlog merged; otherwise it gets every change as its own frame (in one write). Above
# a sweep of 10,000 clients on a quiet core (~0.1 s), below the 250 ms latency goal.
MERGE_LAG = 0.2
# Behind: when this many changes or more arrived while one pass over the followers ran,
# fan-out is what holds the core back. The next pass then merges every follower's
# backlog into one patch (whatever MERGE_LAG says: runs of single frames cost the
# devices as much as the server), and starts after a pause of PACE_SHARE of the last
# pass (capped), which leaves the rest of the node a share of the core. At 50 changes/s
# to 10,000 devices: p99 staleness 326-393 ms before -> 162-180 ms, 8.5-8.7 s of server
# CPU in 10 s (no pause: 163-169 ms, 9.7 s; a full pass: 264-288 ms). At 10 changes/s (one
# change per pass) it never triggers.
PACE_CHANGES = 3
PACE_SHARE = 0.25
PACE_MAX = 0.25
CATCH_UP_TIMEOUT = 2.0  # distributed broker: wait this long for others' entries, then resync
MAX_ATTEMPTS = 50  # publish retries against a head that keeps moving


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


class Hub:
    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.channels: dict[str, Channel] = {}
        self.stats = {"published": 0, "delivered_frames": 0, "drift": 0, "resyncs": 0}
        # Told about cue executions clients report in heartbeats: (channel, session, cue id,
        # executed_at server ms). The shows domain measures sync spread with it.
        self.cue_observers: list[Callable[[str, str, str, float], None]] = []
        # Told (channel, offset, client_hash, server_hash) when a client's heartbeat shows
        # it renders something else (the reconciler records it); must not block.
        self.drift_listeners: list[Callable[[str, int, str, str], None]] = []
        # Checks every published state before it is accepted (see PublishGuard).
        self.guards: list[PublishGuard] = []

    async def start(self) -> None:
        await self.broker.start(self._deliver)

    def add_guard(self, guard: PublishGuard) -> None:
        """Plug a guard into the publish path (assembly, web/app.py)."""
        self.guards.append(guard)

    async def close(self) -> None:
        await self.broker.close()

    # ---- changes -------------------------------------------------------------------

    async def publish(self, name: str, state: dict) -> Entry | None:
        """Make `state` the channel's state. Returns the patch entry, or None if nothing
        changed. Creates the channel on first use. Every guard checks (and may correct)
        the state right before it is appended, so what it checked is what goes out."""
        channel = self.channels.get(name)
        if channel is None:
            head = await self.broker.open(name, self._guarded(name, state))
            channel = self.channels.setdefault(name, self._channel_from(name, head))
        async with channel.lock:
            for _ in range(MAX_ATTEMPTS):
                state = self._guarded(name, state)
                ops = diff(channel.state, state)
                if not ops:
                    return None
                try:
                    entry = await self.broker.append(name, "patch", ops, state,
                                                     base=(channel.epoch, channel.offset))
                except Conflict as exc:
                    # Another node appended first (or the log was lost): catch up, re-diff.
                    await self._catch_up(channel, exc.head)
                    continue
                self.stats["published"] += 1
                return entry
            raise RuntimeError(f"channel {name}: could not append after {MAX_ATTEMPTS} tries")

    def _guarded(self, name: str, state: dict) -> dict:
        for guard in self.guards:
            state = guard.check(name, state)
        return state

    async def open(self, name: str, state: dict) -> None:
        """Make the channel known here without changing it: the broker's current head, or
        a new channel with `state` if nobody has opened it yet (a node that only relays a
        channel another node publishes)."""
        if name not in self.channels:
            head = await self.broker.open(name, state)
            self.channels.setdefault(name, self._channel_from(name, head))

    async def publish_many(self, states: Iterable[tuple[str, dict]]) -> list[Entry]:
        entries = []
        for name, state in states:
            entry = await self.publish(name, state)
            if entry is not None:
                entries.append(entry)
        return entries

    async def send_event(self, name: str, type: str, data: dict) -> Entry:
        """Append a non-state entry (a show `cue`) with the next offset: it reaches
        subscribers in order with the patches and is replayed on resume like them; the
        channel's state does not change. `data` is merged into the frame."""
        channel = self._get(name)
        async with channel.lock:
            entry = await self.broker.append(name, type, data, channel.state)
            self.stats["published"] += 1
            return entry

    def report_cue(self, channel: str, session: str, cue_id: str, executed_at: float) -> None:
        for observer in self.cue_observers:
            try:
                observer(channel, session, cue_id, executed_at)
            except Exception:  # a client's report must never break its connection
                log.exception("cue observer failed")

    def _channel_from(self, name: str, head: Head) -> Channel:
        return Channel(name, head.epoch, head.offset, head.state,
                       window=history_limit(name, RECENT))

    def _deliver(self, entry: Entry) -> None:
        channel = self.channels.get(entry.channel)
        if channel is None:
            return
        if entry.type == LOST:
            self._start_resync(channel)
            return
        if channel.resync is not None:
            channel.held.append(entry)
            return
        if entry.epoch == channel.epoch and entry.offset <= channel.offset:
            return  # already part of a head this node adopted
        if entry.epoch != channel.epoch or entry.offset != channel.offset + 1:
            # Only a distributed broker gets here (new epoch, or entries we never saw):
            # re-read the head and send subscribers a snapshot rather than a broken history.
            log.warning("channel %s: entry %s/%s does not follow %s/%s; resyncing",
                        entry.channel, entry.epoch, entry.offset, channel.epoch,
                        channel.offset)
            channel.held.append(entry)
            self._start_resync(channel)
            return
        if entry.type == "patch":
            channel.state = apply_ops(channel.state, entry.data)
        channel.offset = entry.offset
        entry.after = channel.state
        entry.delivered = time.monotonic()
        wire = entry.wire = Wire.of(entry_message(entry))
        entry.frame = wire.text
        channel.total += len(wire.payload)
        entry.total = channel.total
        channel.push(entry)
        for pending in channel.pending.values():
            pending.append(entry)
        for subscriber in list(channel.plain):
            subscriber.send_frame(entry.frame)
        self.stats["delivered_frames"] += len(channel.subscribers)
        if channel.followers:
            self._kick(channel)
        channel.advanced.set()

    # ---- fan-out to followers --------------------------------------------------------

    def _kick(self, channel: Channel) -> None:
        """Start a sweep over the channel's followers, or have the running one go again."""
        if channel.sweeping:
            channel.again = True
            return
        channel.sweeping, channel.again = True, False
        channel.sweep_queue, channel.sweep_index = list(channel.followers), 0
        channel.sweep_started, channel.sweep_from = time.perf_counter(), channel.offset
        asyncio.get_running_loop().call_soon(self._sweep, channel)

    def _sweep(self, channel: Channel) -> None:
        deadline = time.perf_counter() + SWEEP_SLICE
        queue, index, followers = channel.sweep_queue, channel.sweep_index, channel.followers
        end, head = len(queue), channel.offset
        # Within one slice the head and the lag are the same for every follower, so what a
        # writable follower at a position gets is too: worked out once (`_feed`), then
        # written to the others at that position with no more per-client work.
        ready: dict[tuple[int, int], bytes] = {}
        while index < end:
            follower = queue[index]
            index += 1
            position = followers.get(follower)
            if position is None or position == head:
                pass
            elif follower.writable() and (data := ready.get((position, follower.wbits))):
                followers[follower] = head
                follower.write(data)
            elif (data := self._feed(channel, follower)) is not None:
                ready[position, follower.wbits] = data
            if not index & 63 and time.perf_counter() > deadline:
                break
        if index < end:
            channel.sweep_index = index
            asyncio.get_running_loop().call_soon(self._sweep, channel)
            return
        channel.sweep_queue = []
        channel.behind = channel.offset - channel.sweep_from >= PACE_CHANGES
        if channel.again and channel.behind:
            pause = min((time.perf_counter() - channel.sweep_started) * PACE_SHARE, PACE_MAX)
            asyncio.get_running_loop().call_later(pause, self._paced, channel)
            return
        channel.sweeping = False
        if channel.again:
            self._kick(channel)

    def _paced(self, channel: Channel) -> None:
        channel.sweeping = False
        self._kick(channel)

    def _feed(self, channel: Channel, follower: Follower, *,
              drained: bool = False) -> bytes | None:
        """Write a follower what it is owed, if its transport takes it; the bytes written
        (the same for every writable follower at its position until the head moves)."""
        position = channel.followers[follower]
        if position == channel.offset:
            return None
        if not follower.writable():
            owed = channel.total_at(position)
            if owed is None or follower.buffered() + channel.total - owed > follower.limit:
                self.unsubscribe(channel.name, follower)
                follower.overflow()
            return None
        merge = drained or channel.behind
        if not merge:
            oldest = position - channel.base_offset  # index of its oldest unsent entry
            merge = (oldest < 0 or oldest >= len(channel.recent) or
                     time.monotonic() - channel.recent[oldest].delivered > MERGE_LAG)
        data = self._wire_since(channel, position, follower.wbits, merge)
        channel.followers[follower] = channel.offset
        follower.write(data)
        return data

    def resume(self, follower: Follower, names: Iterable[str]) -> None:
        """A follower's transport drained: catch it up on its channels now."""
        for name in names:
            channel = self.channels.get(name)
            if channel is not None and follower in channel.followers:
                self._feed(channel, follower, drained=True)

    def _wire_since(self, channel: Channel, position: int, wbits: int, merge: bool) -> bytes:
        """Everything from `position` to the head as frame bytes (patch runs merged or
        not), built once per (position, deflate window, merge) and head; a snapshot when
        the window is passed."""
        if channel.cache_head != channel.offset:
            channel.cache_head = channel.offset
            channel.wire_cache.clear()
            channel.parts_cache.clear()
        key = (position, wbits, merge)
        data = channel.wire_cache.get(key)
        if data is None:
            if (position, merge) in channel.parts_cache:
                parts = channel.parts_cache[position, merge]
            else:
                parts = channel.parts_cache[position, merge] = self._parts_since(
                    channel, position, merge)
            if parts is None:
                data = self.snapshot_wire(channel.name).frame(wbits)
            else:
                data = b"".join(part.frame(wbits) for part in parts)
            channel.wire_cache[key] = data
        return data

    def _parts_since(self, channel: Channel, position: int,
                     merge: bool) -> list[Wire] | None:
        if channel.state_at(position) is None:
            return None
        first = position - channel.base_offset  # index of the entry after `position`
        entries = [channel.recent[i] for i in range(first, len(channel.recent))]
        if not merge:
            return [entry.wire for entry in entries]
        parts: list[Wire] = []
        run: list[Entry] = []
        start = position
        for entry in [*entries, None]:
            if entry is not None and entry.type == "patch":
                run.append(entry)
                continue
            if len(run) == 1:
                parts.append(run[0].wire)
            elif run:
                parts.append(self._merged(channel, start, run[-1]))
            run = []
            if entry is not None:
                parts.append(entry.wire)
                start = entry.offset
        return parts

    def _merged(self, channel: Channel, start: int, last: Entry) -> Wire:
        """One patch taking the state at `start` to the state after `last`."""
        before = channel.state_at(start)
        ops = diff(before, last.after)
        self.stats["coalesced"] = self.stats.get("coalesced", 0) + 1
        return Wire.of({"type": "patch", "channel": channel.name, "epoch": channel.epoch,
                        "offset": last.offset, "from": start, "ops": ops})

    # ---- distributed broker: catching up and resyncing ------------------------------

    async def _catch_up(self, channel: Channel, head: Head | None) -> None:
        """After a Conflict: wait until this node has delivered up to the broker's head
        (others' entries are on their way), or resync when that does not happen."""
        if head is None or head.epoch != channel.epoch:
            await self._resync_now(channel)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CATCH_UP_TIMEOUT
        while channel.epoch == head.epoch and channel.offset < head.offset:
            channel.advanced.clear()
            remaining = deadline - loop.time()
            if remaining <= 0:
                await self._resync_now(channel)
                return
            try:
                await asyncio.wait_for(channel.advanced.wait(), remaining)
            except TimeoutError:
                continue

    def _start_resync(self, channel: Channel) -> asyncio.Task:
        if channel.resync is None:
            channel.resync = asyncio.get_running_loop().create_task(self._resync(channel))
        return channel.resync

    async def _resync_now(self, channel: Channel) -> None:
        await asyncio.shield(self._start_resync(channel))

    async def _resync(self, channel: Channel) -> None:
        """Adopt the broker's head (re-opening the channel, which starts a new epoch if its
        log was lost) and send every subscriber a snapshot of it."""
        try:
            for delay in (0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0):
                try:
                    head = await self.broker.open(channel.name, channel.state)
                    break
                except Exception as exc:  # broker unreachable: keep serving, try again
                    log.warning("channel %s: cannot re-read head (%s)", channel.name, exc)
                    await asyncio.sleep(delay)
            else:
                return
            moved = (head.epoch, head.offset) != (channel.epoch, channel.offset)
            channel.epoch, channel.offset, channel.state = head.epoch, head.offset, head.state
            if moved:
                channel.reset_window()
                channel.snapshot_wire = None
                self.stats["resyncs"] += 1
                for subscriber in list(channel.plain):
                    subscriber.send_frame(self.snapshot_frame(channel.name))
                for follower in list(channel.followers):
                    self.resnapshot(channel.name, follower)
                channel.advanced.set()
        finally:
            channel.resync = None
            held, channel.held = channel.held, []
            for entry in held:
                if entry.epoch == channel.epoch and entry.offset > channel.offset:
                    self._deliver(entry)

    # ---- subscribers ---------------------------------------------------------------

    def has_channel(self, name: str) -> bool:
        return name in self.channels

    def snapshot(self, name: str) -> tuple[str, int, dict, str]:
        channel = self._get(name)
        return channel.epoch, channel.offset, channel.state, channel.current_hash

    def snapshot_wire(self, name: str) -> Wire:
        channel = self._get(name)
        cached = channel.snapshot_wire
        if cached is None or cached[:2] != (channel.epoch, channel.offset):
            # One encoding per offset, shared by every client that joins at that offset.
            wire = Wire.of({"type": "snapshot", "channel": name, "epoch": channel.epoch,
                            "offset": channel.offset, "state": channel.state,
                            "state_hash": channel.current_hash})
            cached = channel.snapshot_wire = (channel.epoch, channel.offset, wire)
        return cached[2]

    def snapshot_frame(self, name: str) -> str:
        return self.snapshot_wire(name).text

    def resnapshot(self, name: str, follower: Follower) -> None:
        """Send a follower a fresh snapshot; it continues from the head."""
        channel = self._get(name)
        if follower in channel.followers:
            channel.followers[follower] = channel.offset
        follower.write(self.snapshot_wire(name).frame(follower.wbits))

    async def subscribe(self, name: str, subscriber: Subscriber, epoch: str | None = None,
                        offset: int | None = None) -> str:
        """Join a channel. With a resumable (epoch, offset) the subscriber is sent exactly
        the missed entries, else a snapshot; then live entries. Returns "resumed" or
        "snapshot"."""
        channel = self._get(name)
        follows_raw = follows(subscriber)
        if epoch == channel.epoch and offset is not None and 0 <= offset <= channel.offset:
            if offset == channel.offset:
                self._join(channel, subscriber, offset)
                return "resumed"
            channel.pending[subscriber] = []
            try:
                history = await self.broker.history(name, epoch, offset)
            finally:
                buffered = channel.pending.pop(subscriber, [])
            if history is not None and (not history or history[0].offset == offset + 1):
                last = offset
                for entry in [*history, *buffered]:
                    if entry.offset == last + 1:
                        if follows_raw:
                            wire = entry.wire or Wire.of(entry_message(entry))
                            subscriber.write(wire.frame(subscriber.wbits))
                        else:
                            subscriber.send_frame(entry.frame or encode(entry_message(entry)))
                        last = entry.offset
                covered = follows_raw and channel.state_at(last) is not None
                if epoch == channel.epoch and (last == channel.offset or covered):
                    self._join(channel, subscriber, last)
                    return "resumed"
        if follows_raw:
            subscriber.write(self.snapshot_wire(name).frame(subscriber.wbits))
        else:
            subscriber.send_frame(self.snapshot_frame(name))
        self._join(channel, subscriber, channel.offset)
        return "snapshot"

    def _join(self, channel: Channel, subscriber: Subscriber, position: int) -> None:
        channel.subscribers.add(subscriber)
        if follows(subscriber):
            if position != channel.offset:
                # Resume: exactly the missed entries, one frame each (live fan-out merges).
                first = position - channel.base_offset
                missed = [channel.recent[i] for i in range(first, len(channel.recent))]
                subscriber.write(b"".join(e.wire.frame(subscriber.wbits) for e in missed))
            channel.followers[subscriber] = channel.offset
        else:
            channel.plain.add(subscriber)

    def unsubscribe(self, name: str, subscriber: Subscriber) -> None:
        channel = self.channels.get(name)
        if channel is not None:
            channel.subscribers.discard(subscriber)
            channel.plain.discard(subscriber)
            channel.followers.pop(subscriber, None)  # type: ignore[call-overload]
            channel.pending.pop(subscriber, None)

    def check_hash(self, name: str, offset: int, digest: str) -> bool | None:
        """Does a client's rendered-state hash match ours at that offset? None: unknown."""
        channel = self.channels.get(name)
        if channel is None:
            return None
        expected = channel.hash_at(offset)
        if expected is None:
            return None
        return expected == digest

    def report_drift(self, name: str, offset: int, client_hash: str) -> None:
        channel = self.channels.get(name)
        server_hash = (channel.hash_at(offset) or "") if channel else ""
        for listener in self.drift_listeners:
            try:
                listener(name, offset, client_hash, server_hash)
            except Exception:  # a listener's failure must not break the connection
                log.exception("drift listener failed")

    def subscriber_count(self, name: str) -> int:
        channel = self.channels.get(name)
        return len(channel.subscribers) if channel else 0

    def _get(self, name: str) -> Channel:
        channel = self.channels.get(name)
        if channel is None:
            raise UnknownChannel(name)
        return channel
