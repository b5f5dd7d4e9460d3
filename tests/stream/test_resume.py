"""Resuming from a position: exactly the missed patches while history reaches back, a
snapshot from another epoch or beyond it; aggregate channels keep a short history."""

from __future__ import annotations

import asyncio

from support.demo import DEMO_CHANNEL, DEMO_SKU, display_state, set_price
from support.live import start_server
from support.streamclient import StreamClient


def test_resume_gets_exactly_the_missed_patches(live_server):
    async def scenario():
        client = StreamClient(live_server.ws_url)
        await client.connect()
        await client.hello(DEMO_CHANNEL)
        await client.next("snapshot")
        await client.close()
        for price in ("1.10", "1.20", "1.30"):
            set_price(live_server.url, live_server.write_headers, price)
        await client.connect()
        await client.hello(DEMO_CHANNEL, resume=True)
        frames = [await client.next() for _ in range(3)]
        extra = await client.quiet(0.2)
        await client.close()
        return client, frames, extra

    client, frames, extra = asyncio.run(scenario())
    assert [f["type"] for f in frames] == ["patch"] * 3
    assert client.snapshots == 1 and not extra and not client.violations
    assert client.views[DEMO_CHANNEL].state == display_state(live_server.url)["state"]


def test_resume_from_another_epoch_or_beyond_history_gets_a_snapshot(tmp_path):
    server = start_server(tmp_path, history_size=2)
    try:
        async def scenario():
            client = StreamClient(server.ws_url)
            await client.connect()
            await client.send({"type": "hello", "protocol": 1, "subscribe": [
                {"channel": DEMO_CHANNEL, "epoch": "not-this-one", "offset": 0}]})
            first = await client.next()
            view = client.views[DEMO_CHANNEL]
            await client.close()
            for price in ("2.10", "2.20", "2.30"):  # three changes, history keeps two
                set_price(server.url, server.write_headers, price)
            await client.connect()
            await client.hello(DEMO_CHANNEL, resume=True)
            second = await client.next()
            await client.close()
            return first, second, view

        first, second, view = asyncio.run(scenario())
        assert first["type"] == "snapshot"
        assert second["type"] == "snapshot" and second["offset"] == view.offset + 3
        assert second["state"]["items"][DEMO_SKU]["price"] == "2.30"
    finally:
        server.stop()


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
