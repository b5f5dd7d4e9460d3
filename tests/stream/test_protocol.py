"""The v1 stream against a real server: welcome and snapshot, live patches in offset
order, one frame for every client, heartbeats that resync, pings."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import httpx

from holobazaar.canonical import state_hash

from support.demo import DEMO_CHANNEL, DEMO_MARKET, DEMO_SKU, aset_price, display_state
from support.streamclient import StreamClient


def test_hello_gets_welcome_then_snapshot_matching_http_state(shared_server):
    async def scenario():
        client = StreamClient(shared_server.ws_url)
        welcome = await client.connect()
        assert welcome["protocol"] == 1
        assert welcome["limits"]["max_frame_bytes"] == 64 * 1024
        await client.hello(DEMO_CHANNEL, f"market/{DEMO_MARKET}",
                           f"market/{DEMO_MARKET}/zone/orchard-row")
        snaps = [await client.next("snapshot") for _ in range(3)]
        await client.close()
        return snaps

    snaps = asyncio.run(scenario())
    by_channel = {s["channel"]: s for s in snaps}
    http_state = display_state(shared_server.url)
    display = by_channel[DEMO_CHANNEL]
    assert display["state"] == http_state["state"]
    assert display["state_hash"] == http_state["state_hash"] == state_hash(display["state"])
    assert display["state"]["items"][DEMO_SKU]["price"]
    assert set(by_channel[f"market/{DEMO_MARKET}"]["state"]["zones"]) >= {"orchard-row"}


def test_price_change_arrives_as_one_patch_in_order(live_server):
    async def scenario():
        client = StreamClient(live_server.ws_url)
        await client.connect()
        await client.hello(DEMO_CHANNEL)
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
    assert {"op": "replace", "path": f"/items/{DEMO_SKU}/price", "value": "9.99"} in patch["ops"]
    assert all(op["path"].startswith(("/items/", "/nodes/")) for op in patch["ops"])
    assert not [f for f in extra if f["type"] == "patch"]
    assert not client.violations
    view = client.views[DEMO_CHANNEL]
    assert view.state["items"][DEMO_SKU]["price"] == "10.25"
    assert state_hash(view.state) == display_state(live_server.url)["state_hash"]
    texts = [n.get("text", "") for n in view.state["nodes"].values()]
    assert any("10.25" in t for t in texts), "the bound price label was re-rendered"


def test_heartbeat_with_a_wrong_hash_is_resynced_by_snapshot(shared_server):
    async def scenario():
        client = StreamClient(shared_server.ws_url)
        await client.connect()
        await client.hello(DEMO_CHANNEL)
        snap = await client.next("snapshot")
        await client.send({"type": "heartbeat", "channel": DEMO_CHANNEL, "offset": snap["offset"],
                           "state_hash": snap["state_hash"]})
        quiet = await client.quiet(0.3)
        await client.send({"type": "heartbeat", "channel": DEMO_CHANNEL, "offset": snap["offset"],
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


def test_many_clients_one_change_each_gets_the_same_frame(shared_server):
    async def scenario():
        clients = [StreamClient(shared_server.ws_url) for _ in range(100)]
        await asyncio.gather(*(c.connect() for c in clients))
        await asyncio.gather(*(c.hello(DEMO_CHANNEL) for c in clients))
        await asyncio.gather(*(c.next("snapshot") for c in clients))
        offset = clients[0].views[DEMO_CHANNEL].offset
        async with httpx.AsyncClient(base_url=shared_server.url,
                                     headers=shared_server.write_headers) as http:
            current = Decimal(clients[0].views[DEMO_CHANNEL].state["items"][DEMO_SKU]["price"])
            await aset_price(http, str(current + Decimal("1")))
        patches = await asyncio.gather(*(c.next("patch") for c in clients))
        await asyncio.gather(*(c.close() for c in clients))
        return offset, patches

    offset, patches = asyncio.run(scenario())
    assert len({json.dumps(p, sort_keys=True) for p in patches}) == 1
    assert patches[0]["offset"] == offset + 1
