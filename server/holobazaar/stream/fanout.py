"""Fan-out to followers (docs/protocol.md, "Fan-out and coalescing"): the sweep over a
channel's followers in slices of the event loop, catching each up in one write (patch
runs merged when it lags or the node is behind), and the pacing that leaves the rest of
the node a share of the core. Mixed into the Hub, so the sweep calls stay plain method
calls (no indirection in the per-follower loop)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable

from holobazaar.stream.broker import Entry
from holobazaar.stream.channel import Channel, Follower
from holobazaar.stream.statepatch import diff
from holobazaar.stream.wire import Wire

# Tuning (figures behind each value: docs/performance.md, "Tuning constants").
# Seconds of fan-out work before yielding to the event loop, so a change request waiting
# for the loop is not held up by a whole sweep.
SWEEP_SLICE = 0.002
# A client whose oldest unsent change is older than this (the server is behind) gets its
# backlog merged into one patch; otherwise every change as its own frame. Above a quiet
# sweep of 10,000 clients, below the 250 ms latency goal.
MERGE_LAG = 0.2
# Behind: PACE_CHANGES or more changes arrived during one pass, so fan-out holds the core.
# The next pass merges every backlog and starts after a pause of PACE_SHARE of the last
# pass (at most PACE_MAX seconds), which leaves the rest of the node a share of the core.
PACE_CHANGES = 3
PACE_SHARE = 0.25
PACE_MAX = 0.25


class Fanout:
    """The Hub's fan-out half; the Hub provides `channels`, `stats`, `unsubscribe` and
    `snapshot_wire`."""

    channels: dict[str, Channel]
    stats: dict[str, int]

    def unsubscribe(self, name: str, subscriber: Follower) -> None:
        raise NotImplementedError

    def snapshot_wire(self, name: str) -> Wire:
        raise NotImplementedError

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
