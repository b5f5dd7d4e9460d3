"""A client that stops reading (stream/fastws.py + the hub's follower sweep, against a real
server): once it reads again it gets what it missed merged into one patch per run between
cues, and every cue."""

from __future__ import annotations

import asyncio
import secrets

from holobazaar.canonical import state_hash

from support.demo import DEMO_MARKET
from support.live import start_server
from support.streamclient import StreamClient


def test_a_client_that_stops_reading_gets_one_merged_patch_and_every_cue(tmp_path):
    server = start_server(tmp_path, send_buffer_bytes=256 * 1024 * 1024)
    hub = server.app.state.services.hub
    channel = f"market/{DEMO_MARKET}/display/coalesce-test"

    async def make_channel():
        await hub.publish(channel, {"blob": "", "n": 0})

    async def slow_is_paused(session: str) -> bool:
        followers = [f for f in hub.channels[channel].followers if f.session == session]
        return bool(followers) and not followers[0].writable()

    async def blob(i: int) -> None:
        # Random text: deflate cannot shrink it, so the socket really fills.
        await hub.publish(channel, {"blob": secrets.token_urlsafe(192_000), "n": i})

    async def changes_and_cues(first: int) -> list[str]:
        cue_ids = []
        for j in range(30):
            await hub.publish(channel, {"blob": "", "n": first + j})
            if j % 10 == 9:
                cue_id = f"cue-{j}"
                cue_ids.append(cue_id)
                await hub.send_event(channel, "cue", {"cue": {
                    "show": "t", "event": "go", "id": cue_id, "start_time": 0.0}})
        return cue_ids

    try:
        server.call(make_channel)

        async def scenario():
            fast = StreamClient(server.ws_url)
            await fast.connect()
            await fast.hello(channel)
            await fast.next("snapshot")
            slow = StreamClient(server.ws_url)
            await slow.connect_stalled(server.settings.port)
            await slow.hello(channel)
            await slow.next("snapshot")
            slow._reader.cancel()
            session = slow.welcome["session"]
            n = 1
            while not server.call(slow_is_paused, session):
                assert n < 200, "the slow client's transport never backed up"
                server.call(blob, n)
                n += 1
            await fast.wait_offset(channel, hub.channels[channel].offset, timeout=20)
            paused_at = hub.channels[channel].offset
            cue_ids = server.call(changes_and_cues, n)
            head = hub.channels[channel].offset
            await fast.wait_offset(channel, head, timeout=10)
            before = len(slow.frames)
            slow._reader = asyncio.create_task(slow._read())
            await slow.wait_offset(channel, head, timeout=30)
            frames = slow.frames[before:]
            await fast.close()
            await slow.close()
            return fast, slow, frames, paused_at, head, cue_ids

        fast, slow, frames, paused_at, head, cue_ids = asyncio.run(scenario())
        server_view = hub.snapshot(channel)
        # The fast client got each blob on its own (the sweep ran between them); the
        # 30 changes made in one go on the event loop may reach it merged, cues in order.
        assert fast.views[channel].applied[:paused_at] == list(range(1, paused_at + 1))
        assert fast.views[channel].state == server_view[2] and not fast.violations
        assert [c["cue"]["id"] for c in fast.cues] == cue_ids
        # The slow one ends on the server's state, in order, with every cue.
        assert not slow.violations
        assert slow.views[channel].offset == head
        assert slow.views[channel].state == server_view[2]
        assert state_hash(slow.views[channel].state) == server_view[3]
        assert [c["cue"]["id"] for c in slow.cues] == cue_ids
        # What it missed while backed up came merged: per run between cues, one patch.
        merged = [f for f in frames if f["type"] == "patch" and "from" in f]
        assert merged, [(f["type"], f.get("offset")) for f in frames]
        tail = [f for f in frames if f.get("offset", 0) > paused_at]
        kinds = [f["type"] for f in tail]
        assert kinds == ["patch", "cue", "patch", "cue", "patch", "cue"], kinds
        assert all("from" in f for f in tail if f["type"] == "patch")
        assert hub.stats.get("coalesced", 0) >= 3
    finally:
        server.stop()
