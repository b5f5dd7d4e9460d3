"""The v1 stream against a real server: snapshot, live patches, resume, limits, bad input."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from decimal import Decimal

import httpx
import pytest

from holobazaar.canonical import state_hash

from streamclient import StreamClient
from support import LiveServer, start_server

MARKET = "greenhaven"
DISPLAY = "zonneveld-greens"
SKU = "TOM-BRANDY"
CHANNEL = f"market/{MARKET}/display/{DISPLAY}"


def set_price(server: LiveServer, price: str, sku: str = SKU) -> dict:
    response = httpx.patch(f"{server.url}/api/v1/markets/{MARKET}/items/{sku}",
                           json={"price": price, "confirm": True}, timeout=10,
                           headers=server.write_headers)
    assert response.status_code == 200, response.text
    return response.json()


async def aset_price(http: httpx.AsyncClient, price: str, sku: str = SKU) -> None:
    response = await http.patch(f"/api/v1/markets/{MARKET}/items/{sku}",
                                json={"price": price, "confirm": True})
    assert response.status_code == 200, response.text


def server_state(server: LiveServer, channel: str = CHANNEL) -> dict:
    _, display = channel.rsplit("/", 1)
    return httpx.get(f"{server.url}/api/v1/displays/{MARKET}/{display}/state").json()


def test_hello_gets_welcome_then_snapshot_matching_http_state(shared_server):
    async def scenario():
        client = StreamClient(shared_server.ws_url)
        welcome = await client.connect()
        assert welcome["protocol"] == 1
        assert welcome["limits"]["max_frame_bytes"] == 64 * 1024
        await client.hello(CHANNEL, f"market/{MARKET}", f"market/{MARKET}/zone/orchard-row")
        snaps = [await client.next("snapshot") for _ in range(3)]
        await client.close()
        return snaps

    snaps = asyncio.run(scenario())
    by_channel = {s["channel"]: s for s in snaps}
    http_state = server_state(shared_server)
    display = by_channel[CHANNEL]
    assert display["state"] == http_state["state"]
    assert display["state_hash"] == http_state["state_hash"] == state_hash(display["state"])
    assert display["state"]["items"][SKU]["price"]
    assert set(by_channel[f"market/{MARKET}"]["state"]["zones"]) >= {"orchard-row"}


def test_price_change_arrives_as_one_patch_in_order(live_server):
    async def scenario():
        client = StreamClient(live_server.ws_url)
        await client.connect()
        await client.hello(CHANNEL)
        snap = await client.next("snapshot")
        async with httpx.AsyncClient(base_url=live_server.url,
                                     headers=live_server.write_headers) as http:
            await aset_price(http, "9.99")
            patch = await client.next("patch")
            await aset_price(http, "9.99")  # no change: no patch
            await aset_price(http, "10.25")
            patch2 = await client.next("patch")
        extra = await client.quiet(0.2)
        await client.close()
        return client, snap, patch, patch2, extra

    client, snap, patch, patch2, extra = asyncio.run(scenario())
    assert patch["offset"] == snap["offset"] + 1 and patch2["offset"] == snap["offset"] + 2
    assert patch["epoch"] == snap["epoch"]
    assert {"op": "replace", "path": f"/items/{SKU}/price", "value": "9.99"} in patch["ops"]
    assert all(op["path"].startswith(("/items/", "/nodes/")) for op in patch["ops"])
    assert not [f for f in extra if f["type"] == "patch"]
    assert not client.violations
    view = client.views[CHANNEL]
    assert view.state["items"][SKU]["price"] == "10.25"
    assert state_hash(view.state) == server_state(live_server)["state_hash"]
    texts = [n.get("text", "") for n in view.state["nodes"].values()]
    assert any("10.25" in t for t in texts), "the bound price label was re-rendered"


def test_resume_gets_exactly_the_missed_patches(live_server):
    async def scenario():
        client = StreamClient(live_server.ws_url)
        await client.connect()
        await client.hello(CHANNEL)
        await client.next("snapshot")
        await client.close()
        for price in ("1.10", "1.20", "1.30"):
            set_price(live_server, price)
        await client.connect()
        await client.hello(CHANNEL, resume=True)
        frames = [await client.next() for _ in range(3)]
        extra = await client.quiet(0.2)
        await client.close()
        return client, frames, extra

    client, frames, extra = asyncio.run(scenario())
    assert [f["type"] for f in frames] == ["patch"] * 3
    assert client.snapshots == 1 and not extra and not client.violations
    assert client.views[CHANNEL].state == server_state(live_server)["state"]


def test_resume_from_another_epoch_or_beyond_history_gets_a_snapshot(tmp_path):
    server = start_server(tmp_path, history_size=2)
    try:
        async def scenario():
            client = StreamClient(server.ws_url)
            await client.connect()
            await client.send({"type": "hello", "protocol": 1, "subscribe": [
                {"channel": CHANNEL, "epoch": "not-this-one", "offset": 0}]})
            first = await client.next()
            view = client.views[CHANNEL]
            await client.close()
            for price in ("2.10", "2.20", "2.30"):  # three changes, history keeps two
                set_price(server, price)
            await client.connect()
            await client.hello(CHANNEL, resume=True)
            second = await client.next()
            await client.close()
            return first, second, view

        first, second, view = asyncio.run(scenario())
        assert first["type"] == "snapshot"
        assert second["type"] == "snapshot" and second["offset"] == view.offset + 3
        assert second["state"]["items"][SKU]["price"] == "2.30"
    finally:
        server.stop()


def test_heartbeat_with_a_wrong_hash_is_resynced_by_snapshot(shared_server):
    async def scenario():
        client = StreamClient(shared_server.ws_url)
        await client.connect()
        await client.hello(CHANNEL)
        snap = await client.next("snapshot")
        await client.send({"type": "heartbeat", "channel": CHANNEL, "offset": snap["offset"],
                           "state_hash": snap["state_hash"]})
        quiet = await client.quiet(0.3)
        await client.send({"type": "heartbeat", "channel": CHANNEL, "offset": snap["offset"],
                           "state_hash": "0" * 64})
        resync = await client.next()
        await client.close()
        return snap, quiet, resync

    snap, quiet, resync = asyncio.run(scenario())
    assert quiet == []
    assert resync["type"] == "snapshot" and resync["state_hash"] == snap["state_hash"]


def test_ping_pong_reports_server_time(shared_server):
    async def scenario():
        client = StreamClient(shared_server.ws_url)
        await client.connect()
        await client.hello()
        await client.send({"type": "ping", "t0": 123.5})
        pong = await client.next("pong")
        await client.close()
        return pong

    pong = asyncio.run(scenario())
    assert pong["t0"] == 123.5 and pong["server_time"] > 1.7e12


BAD_FRAMES = [
    ("x" * (64 * 1024 + 1), "frame_too_large"),
    ("{not json", "bad_json"),
    (b"\x00\x01binary", "binary_not_supported"),
    ('["a", "list"]', "invalid_message"),
    ('{"type": "shout"}', "unknown_type"),
    ('{"no": "type"}', "unknown_type"),
    ('{"type": "ping", "t0": "soon"}', "invalid_message"),
    ('{"type": "ping", "t0": 1, "extra": true}', "invalid_message"),
    ('{"type": "hello", "protocol": 1, "subscribe": [{"channel": "market/nope/display/x"}]}',
     "unknown_channel"),
    ('{"type": "hello", "protocol": 1, "subscribe": [{"channel": "../../etc"}]}',
     "invalid_message"),
    ('{"type": "hello", "protocol": 1, "subscribe": [{"channel": "market/greenhaven", '
     '"offset": -1}]}', "invalid_message"),
    ('{"type": "heartbeat", "channel": "market/greenhaven", "offset": 0, "state_hash": "zz"}',
     "invalid_message"),
    ('{"type": "leave", "channel": "market/greenhaven/zone/orchard-row"}', "not_subscribed"),
]


@pytest.mark.parametrize(("frame", "code"), BAD_FRAMES, ids=[c for _, c in BAD_FRAMES])
def test_bad_frames_get_an_error_and_the_server_keeps_serving(shared_server, frame, code):
    async def scenario():
        bystander = StreamClient(shared_server.ws_url)
        await bystander.connect()
        await bystander.hello(CHANNEL)
        await bystander.next("snapshot")
        client = StreamClient(shared_server.ws_url)
        await client.connect()
        await client.hello()
        await client.send(frame)
        error = await client.next("error")
        # Still usable after the error.
        await client.send({"type": "ping", "t0": 1})
        pong = await client.next("pong")
        async with httpx.AsyncClient(base_url=shared_server.url,
                                     headers=shared_server.write_headers) as http:
            current = Decimal(bystander.views[CHANNEL].state["items"][SKU]["price"])
            await aset_price(http, str(current + Decimal("0.01")))
        patch = await bystander.next("patch")
        await client.close()
        await bystander.close()
        return error, pong, patch

    error, pong, patch = asyncio.run(scenario())
    assert error["code"] == code, error
    assert error["message"]
    assert pong["type"] == "pong" and patch["type"] == "patch"


def test_messages_before_hello_and_wrong_protocol(shared_server):
    async def scenario():
        client = StreamClient(shared_server.ws_url)
        await client.connect()
        await client.send({"type": "ping", "t0": 1})
        before = await client.next("error")
        await client.send({"type": "hello", "protocol": 2, "subscribe": []})
        wrong = await client.next("error")
        await client.ws.wait_closed()
        return before, wrong, client.close_code

    before, wrong, code = asyncio.run(scenario())
    assert before["code"] == "hello_required"
    assert wrong["code"] == "unsupported_protocol" and code == 1008


def test_too_many_subscriptions(tmp_path):
    server = start_server(tmp_path, max_subscriptions=2)
    try:
        async def scenario():
            client = StreamClient(server.ws_url)
            await client.connect()
            await client.hello(CHANNEL, f"market/{MARKET}", f"market/{MARKET}/zone/orchard-row")
            frames = [await client.next() for _ in range(3)]
            await client.close()
            return frames

        kinds = sorted(f.get("code", f["type"]) for f in asyncio.run(scenario()))
        assert kinds == ["snapshot", "snapshot", "too_many_subscriptions"]
    finally:
        server.stop()


def test_flood_is_rate_limited_and_repeated_abuse_closes_with_policy_violation(tmp_path):
    server = start_server(tmp_path, client_rate=5, client_burst=5, max_errors=50)
    try:
        async def flood():
            client = StreamClient(server.ws_url)
            await client.connect()
            await client.hello()
            for i in range(30):
                await client.send({"type": "ping", "t0": i})
            frames = await client.quiet(0.5)
            await client.close()
            return frames

        frames = asyncio.run(flood())
        pongs = [f for f in frames if f["type"] == "pong"]
        limited = [f for f in frames if f.get("code") == "rate_limited"]
        assert 4 <= len(pongs) <= 8 and len(limited) >= 20
    finally:
        server.stop()

    async def abuse(url):
        client = StreamClient(url)
        await client.connect()
        for _ in range(12):
            await client.send("garbage")
        await asyncio.wait_for(client.ws.wait_closed(), 5)
        return client

    server = start_server(tmp_path / "2", max_errors=10)
    try:
        client = asyncio.run(abuse(server.ws_url))
        assert client.close_code == 1008
        assert len([e for e in client.errors if e["code"] == "bad_json"]) == 10
        assert server.app.state.stream_metrics["policy_closes"] == 1
    finally:
        server.stop()


def test_slow_consumer_is_dropped_and_never_delays_the_others(tmp_path):
    """A client that stops reading is disconnected once it owes more than the send
    buffer; fast clients receive every patch meanwhile."""
    server = start_server(tmp_path, send_buffer_bytes=256 * 1024)
    hub = server.app.state.hub
    channel = f"market/{MARKET}/display/bulk-test"
    changes = 150  # ~60 KB each: 9 MB in all, far past kernel buffers (4 MB) + our bound

    async def make_channel():
        await hub.publish(channel, {"blob": ""})

    async def publish_all():
        for i in range(changes):
            # Random text: permessage-deflate cannot shrink it.
            await hub.publish(channel, {"blob": f"{i:06d}" + secrets.token_urlsafe(45_000)})
            await asyncio.sleep(0.002)

    try:
        server.call(make_channel)

        async def scenario():
            fast = [StreamClient(server.ws_url) for _ in range(3)]
            for client in fast:
                await client.connect()
                await client.hello(channel)
                await client.next("snapshot")
            slow = StreamClient(server.ws_url)
            await slow.connect_stalled(server.settings.port)
            await slow.hello(channel)
            await asyncio.sleep(0.1)
            slow._reader.cancel()
            start = asyncio.get_running_loop().time()
            publisher = asyncio.wrap_future(
                asyncio.run_coroutine_threadsafe(publish_all(), server.server_loop))
            await publisher
            for client in fast:
                await client.wait_offset(channel, changes, timeout=20)
            elapsed = asyncio.get_running_loop().time() - start
            for client in fast:
                await client.close()
            return fast, elapsed

        fast, elapsed = asyncio.run(scenario())
        for client in fast:
            view = client.views[channel]
            assert view.applied == list(range(1, changes + 1)) and not client.violations
        metrics = server.app.state.stream_metrics
        assert metrics.get("slow_disconnects") == 1
        deadline = time.monotonic() + 5  # the fast clients' own closes land asynchronously
        while hub.subscriber_count(channel) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert hub.subscriber_count(channel) == 0
        assert elapsed < 15
    finally:
        server.stop()


def test_many_clients_one_change_each_gets_the_same_frame(shared_server):
    async def scenario():
        clients = [StreamClient(shared_server.ws_url) for _ in range(100)]
        await asyncio.gather(*(c.connect() for c in clients))
        await asyncio.gather(*(c.hello(CHANNEL) for c in clients))
        await asyncio.gather(*(c.next("snapshot") for c in clients))
        offset = clients[0].views[CHANNEL].offset
        async with httpx.AsyncClient(base_url=shared_server.url,
                                     headers=shared_server.write_headers) as http:
            current = Decimal(clients[0].views[CHANNEL].state["items"][SKU]["price"])
            await aset_price(http, str(current + Decimal("1")))
        patches = await asyncio.gather(*(c.next("patch") for c in clients))
        await asyncio.gather(*(c.close() for c in clients))
        return offset, patches

    offset, patches = asyncio.run(scenario())
    assert len({json.dumps(p, sort_keys=True) for p in patches}) == 1
    assert patches[0]["offset"] == offset + 1


def test_pulse_channels_keep_a_short_history_and_resume_by_snapshot():
    from holobazaar.channels import AGGREGATE_HISTORY
    from holobazaar.stream.broker_memory import InProcessBroker

    async def scenario():
        broker = InProcessBroker(history_size=1000)
        await broker.start(lambda entry: None)
        for name in ("market/m/pulse", "market/m/display/d"):
            head = await broker.open(name, {"n": 0})
            for n in range(1, 101):
                await broker.append(name, "patch", [{"op": "replace", "path": "/n",
                                                     "value": n}], {"n": n})
            recent = await broker.history(name, head.epoch, 100 - AGGREGATE_HISTORY)
            too_old = await broker.history(name, head.epoch, 10)
            yield name, recent, too_old

    async def collect():
        return [row async for row in scenario()]

    (_, recent, too_old), (_, d_recent, d_old) = asyncio.run(collect())
    assert len(recent) == AGGREGATE_HISTORY and too_old is None  # -> a snapshot instead
    assert len(d_recent) == AGGREGATE_HISTORY and len(d_old) == 90


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
    import json
    import time

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
