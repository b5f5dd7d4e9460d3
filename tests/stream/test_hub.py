"""The hub on its own (in-process broker, followers made up): how much of a pulse channel's
past it keeps, and the sweep merging and pacing changes that outrun a pass."""

from __future__ import annotations

import asyncio
import json
import time


def test_hub_keeps_as_few_states_of_a_pulse_channel_as_its_history():
    """A pulse state changes almost everywhere each second, so its recent states share
    nothing: 1024 of them grew the server by 70 MB in 17 minutes (bench/pulse.py)."""
    from holobazaar.channels import AGGREGATE_HISTORY
    from holobazaar.stream.broker_memory import InProcessBroker
    from holobazaar.stream.channel import RECENT
    from holobazaar.stream.hub import Hub

    async def scenario():
        hub = Hub(InProcessBroker(history_size=2000))
        await hub.start()
        try:
            for name in ("market/m/pulse", "market/m/display/d"):
                for n in range(RECENT + 50):
                    await hub.publish(name, {"n": n})
            pulse, display = hub.channels["market/m/pulse"], hub.channels["market/m/display/d"]
            return (len(pulse.recent), pulse.state_at(pulse.offset - AGGREGATE_HISTORY),
                    pulse.state_at(pulse.offset - AGGREGATE_HISTORY - 1),
                    len(display.recent))
        finally:
            await hub.close()

    pulse_kept, oldest, too_old, display_kept = asyncio.run(scenario())
    assert pulse_kept == AGGREGATE_HISTORY and display_kept == RECENT
    assert oldest == {"n": RECENT + 49 - AGGREGATE_HISTORY} and too_old is None


def test_fan_out_merges_and_paces_when_changes_outrun_a_pass():
    """Changes arriving faster than one pass over the followers reaches them all: the next
    pass merges each follower's backlog into one patch and starts after a short pause,
    so devices get one frame per pass and the rest of the node a share of the core (at
    50 changes/s to 10,000 devices: p99 staleness 393 -> ~175 ms). Every follower ends
    at the head. Two changes in a pass (the normal case) are neither merged nor paced."""

    from holobazaar.stream.broker_memory import InProcessBroker
    from holobazaar.stream.fanout import PACE_CHANGES
    from holobazaar.stream.hub import Hub

    class Follower:
        raw_frames, wbits, limit = True, 0, 1 << 20

        def __init__(self) -> None:
            self.writes: list[bytes] = []

        def send_frame(self, frame: str) -> None:
            pass

        def write(self, data: bytes) -> None:
            self.writes.append(data)
            busy = time.perf_counter() + 0.00001  # 3,000 of these: a pass of 30 ms or more
            while time.perf_counter() < busy:
                pass

        def writable(self) -> bool:
            return True

        def buffered(self) -> int:
            return 0

        def overflow(self) -> None:
            pass

    def messages(data: bytes) -> list[dict]:
        """The JSON of each (unmasked, uncompressed) text frame in one write."""
        found, at = [], 0
        while at < len(data):
            size, at = data[at + 1] & 0x7F, at + 2
            if size == 126:
                size, at = int.from_bytes(data[at:at + 2], "big"), at + 2
            elif size == 127:
                size, at = int.from_bytes(data[at:at + 8], "big"), at + 8
            found.append(json.loads(data[at:at + size]))
            at += size
        return found

    async def scenario(changes_during_pass: int) -> tuple[int, list[list[dict]], bool]:
        hub = Hub(InProcessBroker(history_size=100))
        paced: list[str] = []
        pace = hub._paced
        hub._paced = lambda channel: (paced.append(channel.name), pace(channel))  # type: ignore[method-assign]
        await hub.start()
        try:
            name = "market/m/display/d"
            await hub.publish(name, {"n": 0, "items": {"a": 1}})
            followers = [Follower() for _ in range(3000)]
            for follower in followers:
                await hub.subscribe(name, follower)
            await asyncio.sleep(0.05)
            for follower in followers:
                follower.writes.clear()
            await hub.publish(name, {"n": 1, "items": {"a": 1}})  # starts a pass
            for n in range(changes_during_pass):
                await asyncio.sleep(0.001)  # between slices of that pass
                await hub.publish(name, {"n": 2 + n, "items": {"a": 1}})
            await asyncio.sleep(0.3)
            channel = hub.channels[name]
            at_head = all(channel.followers[f] == channel.offset for f in followers)
            # What the first follower (visited first, so behind after pass one) got next.
            return len(paced), [messages(w) for w in followers[0].writes[1:]], at_head
        finally:
            await hub.close()

    paced, later, at_head = asyncio.run(scenario(PACE_CHANGES))
    assert at_head and paced >= 1
    assert later and all(len(write) == 1 and write[0]["type"] == "patch" and "from" in write[0]
                         for write in later), later  # one merged patch per pass

    paced, later, at_head = asyncio.run(scenario(1))
    assert at_head and paced == 0
    assert later and all("from" not in m for write in later for m in write)
