"""Failures with real processes and a real Redis: a node SIGKILLed right after it
acknowledged a change (API and signed push feed), and Redis losing every channel log
mid-stream."""

from __future__ import annotations

import asyncio
import functools
import json
import threading
import time
import uuid

import httpx
import pytest
import redis
from sqlmodel import select

from holobazaar import db
from holobazaar.inventory.feed_routes import new_secret
from holobazaar.inventory.feeds import sign
from holobazaar.inventory.tables import FeedBatch
from scaleout.nodes import CHANNEL, ITEM_PATH, MARKET, SKU

from support.databases import delete_prefix
from support.streamclient import StreamClient
from support.waiting import wait_for_async

pytestmark = [pytest.mark.redis, pytest.mark.postgres]


# Changes cross Redis and other processes: a longer wait than within one server.
wait_for = functools.partial(wait_for_async, timeout=10.0, interval=0.01)


def price(client: StreamClient) -> str | None:
    view = client.views.get(CHANNEL)
    return view.state["items"][SKU]["price"] if view else None


async def wait_item_price(http: httpx.AsyncClient, url: str, value: str) -> None:
    """A node's inventory API follows changes made elsewhere (its copy is invalidated over
    Redis pub/sub, a few ms after the change)."""
    async with asyncio.timeout(5):
        while True:
            items = (await http.get(f"{url}/api/v1/markets/{MARKET}/items")).json()
            if next(i for i in items if i["sku"] == SKU)["price"] == value:
                return
            await asyncio.sleep(0.02)


async def joined(url: str) -> StreamClient:
    client = StreamClient(url)
    await client.connect()
    await client.hello(CHANNEL)
    await client.next("snapshot")
    return client


def test_a_change_acknowledged_by_a_node_survives_its_sigkill(cluster):
    b, c = cluster.nodes[:2]
    headers = cluster.write_headers
    with httpx.Client(timeout=10) as http:
        http.patch(f"{b.url}{ITEM_PATH}", json={"price": "5.55", "confirm": True},
                   headers=headers).raise_for_status()
    a = cluster.start("victim")[0]  # started late: serves the current state from Redis

    async def scenario() -> None:
        on_a, on_b, on_c = [await joined(n.ws_url) for n in (a, b, c)]
        first, second = on_a.views[CHANNEL], on_b.views[CHANNEL]
        assert (first.epoch, first.offset, first.state) == (
            second.epoch, second.offset, second.state)
        assert price(on_a) == "5.55"
        async with httpx.AsyncClient(timeout=10) as http:
            response = await http.patch(f"{a.url}{ITEM_PATH}", json={"price": "7.77",
                                                                "confirm": True},
                                        headers=headers)
            assert response.status_code == 200
            a.kill()  # right after the acknowledgement: no shutdown code runs
            await wait_for(lambda: price(on_b) == "7.77" and price(on_c) == "7.77")
            await wait_item_price(http, b.url, "7.77")

            # A's client reconnects to B (any node resumes any client): no gap.
            await wait_for(lambda: on_a.ws.close_code is not None or price(on_a) == "7.77")
            await on_a.close()
            on_a.url = b.ws_url
            await on_a.connect()
            await on_a.hello(CHANNEL, resume=True)

            # The survivors carry on.
            for i in range(5):
                node = (b, c)[i % 2]
                response = await http.patch(f"{node.url}{ITEM_PATH}",
                                            json={"price": f"8.0{i}"}, headers=headers)
                assert response.status_code == 200
        await wait_for(lambda: all(price(x) == "8.04" for x in (on_a, on_b, on_c)))
        for client in (on_a, on_b, on_c):
            assert client.violations == []
            view = client.views[CHANNEL]
            assert view.state == on_b.views[CHANNEL].state
            await client.close()
        assert on_b.views[CHANNEL].epoch == on_c.views[CHANNEL].epoch

    asyncio.run(scenario())


def test_redis_losing_the_logs_mid_stream_resyncs_every_client_by_snapshot(cluster):
    a, b = cluster.nodes[:2]
    headers = cluster.write_headers
    admin = redis.Redis.from_url(cluster.redis_url)

    async def scenario() -> None:
        clients = [await joined(n.ws_url) for n in (a, b, a, b)]
        old_epoch = clients[0].views[CHANNEL].epoch
        async with httpx.AsyncClient(timeout=10) as http:
            writer = asyncio.create_task(stream_changes(http, (a, b), headers))
            await wait_for(lambda: all(price(x) not in (None, "") for x in clients))
            await asyncio.sleep(0.5)
            # What FLUSHDB (or a restart without persistence) does, to our keys only.
            assert delete_prefix(admin, cluster.prefix) > 0
            last = await writer
            await wait_for(lambda: all(
                x.views[CHANNEL].epoch != old_epoch and price(x) == last for x in clients))
            # After the reset every node agrees on one new epoch and keeps streaming.
            epochs = {x.views[CHANNEL].epoch for x in clients}
            assert len(epochs) == 1
            response = await http.patch(f"{b.url}{ITEM_PATH}", json={"price": "1.23",
                                                                "confirm": True},
                                        headers=headers)
            assert response.status_code == 200
            await wait_for(lambda: all(price(x) == "1.23" for x in clients))
            await wait_item_price(http, a.url, "1.23")
        for client in clients:
            assert client.violations == [], client.violations
            assert client.snapshots >= 2  # the first one, and the resync
            assert client.views[CHANNEL].state == clients[0].views[CHANNEL].state
            await client.close()

    async def stream_changes(http, nodes, headers) -> str:
        value = ""
        for i in range(30):
            value = f"{50 + i}.00"
            response = await http.patch(f"{nodes[i % 2].url}{ITEM_PATH}",
                                        json={"price": value, "confirm": True}, headers=headers)
            assert response.status_code == 200, response.text
            await asyncio.sleep(0.03)
        return value

    try:
        asyncio.run(scenario())
    finally:
        admin.close()


def test_feed_batches_acknowledged_by_a_node_survive_its_sigkill(cluster):
    """The push feed (signed batches) into one node, which is SIGKILLed mid-stream: every
    acknowledged batch is in the shared database and on the other nodes' displays."""
    engine = db.make_engine(cluster.database_url, 1, 0)
    try:
        secret = new_secret(engine, MARKET, "scale-out tests")
        feeder = cluster.start("feeder")[0]  # starts knowing the secret
        survivor = cluster.nodes[0]
        acked: list[tuple[str, int]] = []
        stop = threading.Event()

        def stream() -> None:
            url = f"{feeder.url}/api/v1/inventory/{MARKET}/events"
            with httpx.Client(timeout=5) as http:
                version = 0
                while not stop.is_set():
                    version += 1
                    body = json.dumps({"events": [
                        {"sku": SKU, "stock": version, "source_version": version}]}).encode()
                    ts, key = str(int(time.time())), uuid.uuid4().hex
                    try:
                        response = http.post(url, content=body, headers={
                            "X-Holobazaar-Timestamp": ts, "Idempotency-Key": key,
                            "X-Holobazaar-Signature": sign(secret, ts, key, body),
                            "Content-Type": "application/json"})
                    except httpx.HTTPError:
                        return  # died mid-request: not acknowledged
                    if response.status_code == 200:
                        acked.append((key, version))

        async def scenario() -> None:
            watcher = await joined(survivor.ws_url)
            pusher = threading.Thread(target=stream)
            pusher.start()
            try:
                deadline = time.monotonic() + 30
                while len(acked) < 15 and time.monotonic() < deadline:
                    await asyncio.sleep(0.02)
                feeder.kill()
            finally:
                stop.set()
                pusher.join(10)
            assert len(acked) >= 15
            last = acked[-1][1]

            def stock(client: StreamClient) -> int:
                return client.views[CHANNEL].state["items"][SKU]["stock"] or 0

            # The survivor's clients already have (or get) the last acknowledged change.
            await wait_for(lambda: stock(watcher) >= last, timeout=5)
            assert watcher.violations == []
            await watcher.close()
            async with httpx.AsyncClient(timeout=10) as http:
                async with asyncio.timeout(5):
                    while True:
                        items = (await http.get(
                            f"{survivor.url}/api/v1/markets/{MARKET}/items")).json()
                        if next(i for i in items if i["sku"] == SKU)["stock"] >= last:
                            break
                        await asyncio.sleep(0.05)

        asyncio.run(scenario())
        with db.session_scope(engine) as session:
            keys = {b.idempotency_key for b in session.exec(
                select(FeedBatch).where(FeedBatch.market == MARKET))}
        missing = [key for key, _ in acked if key not in keys]
        assert not missing, f"{len(missing)} acknowledged batches lost"
    finally:
        engine.dispose()
