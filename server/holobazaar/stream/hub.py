"""The hub: one ordered log per channel and the only way anything reaches clients.

`publish(channel, state)` is the single entry point for changes: it diffs the new state
against the channel's current one (JSON Patch, RFC 6902), has the broker append the patch
with the next offset, and when the broker delivers the entry the hub encodes it once and
hands that same frame to every subscriber.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import jsonpatch

from holobazaar.canonical import state_hash
from holobazaar.stream.broker import LOST, Broker, Conflict, Entry, Head

log = logging.getLogger(__name__)

HASHES_KEPT = 256  # offsets whose state hash we remember, to check heartbeats against
CATCH_UP_TIMEOUT = 2.0  # distributed broker: wait this long for others' entries, then resync
MAX_ATTEMPTS = 50  # publish retries against a head that keeps moving


class Subscriber(Protocol):
    def send_frame(self, frame: str) -> None:
        """Queue a pre-encoded frame; must not block (a slow subscriber drops itself)."""


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
    # Subscribers resuming: live entries that arrive while their history is being read.
    pending: dict[Subscriber, list[Entry]] = field(default_factory=dict)
    hashes: OrderedDict[int, str] = field(default_factory=OrderedDict)
    snapshot_frame: tuple[int, str] | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # Distributed broker only: set on every delivery; entries held while re-reading the head.
    advanced: asyncio.Event = field(default_factory=asyncio.Event)
    resync: asyncio.Task | None = None
    held: list[Entry] = field(default_factory=list)

    def remember_hash(self) -> str:
        digest = state_hash(self.state)
        self.hashes[self.offset] = digest
        while len(self.hashes) > HASHES_KEPT:
            self.hashes.popitem(last=False)
        return digest

    @property
    def current_hash(self) -> str:
        return self.hashes.get(self.offset) or self.remember_hash()


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

    async def start(self) -> None:
        await self.broker.start(self._deliver)

    async def close(self) -> None:
        await self.broker.close()

    # ---- changes -------------------------------------------------------------------

    async def publish(self, name: str, state: dict) -> Entry | None:
        """Make `state` the channel's state. Returns the patch entry, or None if nothing
        changed. Creates the channel on first use."""
        channel = self.channels.get(name)
        if channel is None:
            head = await self.broker.open(name, state)
            channel = self.channels.setdefault(name, self._channel_from(name, head))
        async with channel.lock:
            for _ in range(MAX_ATTEMPTS):
                ops = jsonpatch.make_patch(channel.state, state).patch
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
        channel = Channel(name, head.epoch, head.offset, head.state)
        channel.remember_hash()
        return channel

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
            channel.state = jsonpatch.apply_patch(channel.state, entry.data)
        channel.offset = entry.offset
        channel.remember_hash()
        entry.frame = encode(entry_message(entry))
        for pending in channel.pending.values():
            pending.append(entry)
        for subscriber in list(channel.subscribers):
            subscriber.send_frame(entry.frame)
        self.stats["delivered_frames"] += len(channel.subscribers)
        channel.advanced.set()

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
                channel.hashes.clear()
                channel.snapshot_frame = None
                channel.remember_hash()
                self.stats["resyncs"] += 1
                frame = self.snapshot_frame(channel.name)
                for subscriber in list(channel.subscribers):
                    subscriber.send_frame(frame)
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

    def snapshot_frame(self, name: str) -> str:
        channel = self._get(name)
        cached = channel.snapshot_frame
        if cached is None or cached[0] != channel.offset:
            # One encoding per offset, shared by every client that joins at that offset.
            frame = encode({"type": "snapshot", "channel": name, "epoch": channel.epoch,
                            "offset": channel.offset, "state": channel.state,
                            "state_hash": channel.current_hash})
            cached = channel.snapshot_frame = (channel.offset, frame)
        return cached[1]

    async def subscribe(self, name: str, subscriber: Subscriber, epoch: str | None = None,
                        offset: int | None = None) -> str:
        """Join a channel. With a resumable (epoch, offset) the subscriber is sent exactly
        the missed entries, else a snapshot; then live entries. Returns "resumed" or
        "snapshot"."""
        channel = self._get(name)
        if epoch == channel.epoch and offset is not None and 0 <= offset <= channel.offset:
            if offset == channel.offset:
                channel.subscribers.add(subscriber)
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
                        subscriber.send_frame(entry.frame or encode(entry_message(entry)))
                        last = entry.offset
                if last == channel.offset and epoch == channel.epoch:
                    channel.subscribers.add(subscriber)
                    return "resumed"
        subscriber.send_frame(self.snapshot_frame(name))
        channel.subscribers.add(subscriber)
        return "snapshot"

    def unsubscribe(self, name: str, subscriber: Subscriber) -> None:
        channel = self.channels.get(name)
        if channel is not None:
            channel.subscribers.discard(subscriber)
            channel.pending.pop(subscriber, None)

    def check_hash(self, name: str, offset: int, digest: str) -> bool | None:
        """Does a client's rendered-state hash match ours at that offset? None: unknown."""
        channel = self.channels.get(name)
        if channel is None:
            return None
        expected = channel.hashes.get(offset)
        if expected is None:
            return None
        return expected == digest

    def report_drift(self, name: str, offset: int, client_hash: str) -> None:
        channel = self.channels.get(name)
        server_hash = channel.hashes.get(offset, "") if channel else ""
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
