"""The hub: one ordered log per channel and the only way anything reaches clients.

`publish(channel, state)` is the single entry point for changes: it diffs the new state
against the channel's current one (JSON Patch, RFC 6902), has the broker append the patch
with the next offset, and when the broker delivers the entry the hub encodes it once.

Subscribers, resume (recovery from an offset, else a snapshot) and the distributed
broker's catch-up live here; the fan-out sweep and its pacing are in fanout.py, the
channel record in channel.py.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable

from holobazaar.channels import history_limit
from holobazaar.stream.broker import LOST, Broker, Conflict, Entry, Head
from holobazaar.stream.channel import (
    RECENT,
    Channel,
    Follower,
    PublishGuard,
    Subscriber,
    UnknownChannel,
    encode,
    entry_message,
    follows,
)
from holobazaar.stream.fanout import Fanout
from holobazaar.stream.statepatch import apply_ops, diff
from holobazaar.stream.wire import Wire

log = logging.getLogger(__name__)

CATCH_UP_TIMEOUT = 2.0  # distributed broker: wait this long for others' entries, then resync
MAX_ATTEMPTS = 50  # publish retries against a head that keeps moving


class Hub(Fanout):
    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.channels: dict[str, Channel] = {}
        self.stats = {"published": 0, "delivered_frames": 0, "drift": 0, "resyncs": 0}
        # Told about cue executions clients report in heartbeats: (channel, session, cue id,
        # executed_at server ms). The shows domain measures sync spread with it.
        self._cue_observers: list[Callable[[str, str, str, float], None]] = []
        # Told (channel, offset, client_hash, server_hash) when a client's heartbeat shows
        # it renders something else (the reconciler records it); must not block.
        self._drift_listeners: list[Callable[[str, int, str, str], None]] = []
        # Checks every published state before it is accepted (see PublishGuard).
        self.guards: list[PublishGuard] = []

    async def start(self) -> None:
        await self.broker.start(self._deliver)

    def add_guard(self, guard: PublishGuard) -> None:
        """Plug a guard into the publish path (assembly, web/app.py)."""
        self.guards.append(guard)

    def add_cue_observer(self, observer: Callable[[str, str, str, float], None]) -> None:
        """Be told of the cue executions clients report (the shows domain)."""
        self._cue_observers.append(observer)

    def add_drift_listener(self, listener: Callable[[str, int, str, str], None]) -> None:
        """Be told when a client renders something else (the reconciler)."""
        self._drift_listeners.append(listener)

    async def close(self) -> None:
        await self.broker.close()

    # ---- changes -------------------------------------------------------------------

    async def publish(self, name: str, state: dict,
                      patch: tuple[dict, list[dict]] | None = None) -> Entry | None:
        """Make `state` the channel's state. Returns the patch entry, or None if nothing
        changed. Creates the channel on first use. Every guard checks (and may correct)
        the state right before it is appended, so what it checked is what goes out.
        `patch`: (base, ops), the ops taking the state `base` to `state`, made by whoever
        composed it (the scene service's incremental path): used instead of diffing the
        whole state when `base` is still the channel's state and no guard corrected it."""
        channel = self.channels.get(name)
        if channel is None:
            head = await self.broker.open(name, self._guarded(name, state))
            channel = self.channels.setdefault(name, self._channel_from(name, head))
        async with channel.lock:
            for _ in range(MAX_ATTEMPTS):
                given, state = state, self._guarded(name, state)
                if patch is not None and patch[0] is channel.state and state is given:
                    ops = patch[1]
                else:
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
        for observer in self._cue_observers:
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

    def state_of(self, name: str) -> dict | None:
        """The channel's current state object here (None: not open), without its hash."""
        channel = self.channels.get(name)
        return channel.state if channel is not None else None

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
        follower = subscriber if follows(subscriber) else None
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
                        if follower is not None:
                            wire = entry.wire or Wire.of(entry_message(entry))
                            follower.write(wire.frame(follower.wbits))
                        else:
                            subscriber.send_frame(entry.frame or encode(entry_message(entry)))
                        last = entry.offset
                covered = follower is not None and channel.state_at(last) is not None
                if epoch == channel.epoch and (last == channel.offset or covered):
                    self._join(channel, subscriber, last)
                    return "resumed"
        if follower is not None:
            follower.write(self.snapshot_wire(name).frame(follower.wbits))
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
            if follows(subscriber):
                channel.followers.pop(subscriber, None)
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
        for listener in self._drift_listeners:
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
