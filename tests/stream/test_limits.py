"""Limits of the v1 stream: bad frames get an error frame and the connection carries on,
subscriptions and message rates are capped, repeated abuse and slow consumers are
disconnected without delaying anyone else."""

from __future__ import annotations

import asyncio
import secrets
import time
from decimal import Decimal

import httpx
import pytest

from support.demo import DEMO_CHANNEL, DEMO_MARKET, DEMO_SKU, aset_price
from support.live import start_server
from support.streamclient import StreamClient

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
        await bystander.hello(DEMO_CHANNEL)
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
            current = Decimal(bystander.views[DEMO_CHANNEL].state["items"][DEMO_SKU]["price"])
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
            await client.hello(DEMO_CHANNEL, f"market/{DEMO_MARKET}",
                               f"market/{DEMO_MARKET}/zone/orchard-row")
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
        assert server.app.state.services.stream_metrics["policy_closes"] == 1
    finally:
        server.stop()


def test_slow_consumer_is_dropped_and_never_delays_the_others(tmp_path):
    """A client that stops reading is disconnected once it owes more than the send
    buffer; fast clients receive every patch meanwhile."""
    server = start_server(tmp_path, send_buffer_bytes=256 * 1024)
    hub = server.app.state.services.hub
    channel = f"market/{DEMO_MARKET}/display/bulk-test"
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
        metrics = server.app.state.services.stream_metrics
        assert metrics.get("slow_disconnects") == 1
        deadline = time.monotonic() + 5  # the fast clients' own closes land asynchronously
        while hub.subscriber_count(channel) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert hub.subscriber_count(channel) == 0
        assert elapsed < 15
    finally:
        server.stop()
