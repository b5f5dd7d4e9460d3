"""Three real `holobazaar serve` processes on one PostgreSQL database and one Redis: any
node serves any visitor, in the same order, and resumes clients that another node served."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from scaleout.nodes import CHANNEL, ITEM_PATH, MARKET, SKU, Deployment, subscribed

from support.streamclient import StreamClient

pytestmark = [pytest.mark.redis, pytest.mark.postgres]


def patches(client: StreamClient) -> list[tuple[str, int, str]]:
    """(epoch, offset, encoded ops) of every patch the client got, in arrival order."""
    return [(f["epoch"], f["offset"], repr(f["ops"])) for f in client.frames
            if f["type"] == "patch" and f["channel"] == CHANNEL]


async def wait_price(client: StreamClient, price: str, timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while True:
            view = client.views.get(CHANNEL)
            if view is not None and view.state["items"][SKU]["price"] == price:
                return
            await asyncio.sleep(0.01)


async def set_price(http: httpx.AsyncClient, url: str, price: str, headers) -> None:
    response = await http.patch(f"{url}{ITEM_PATH}", json={"price": price, "confirm": True},
                              headers=headers)
    assert response.status_code == 200, response.text


def test_patches_made_on_one_node_reach_clients_of_the_others_in_the_same_order(cluster):
    a, b, c = cluster.nodes[:3]
    headers = cluster.write_headers

    async def scenario() -> None:
        clients = await subscribed([a, b, c], CHANNEL)
        start = clients[0].views[CHANNEL].offset
        async with httpx.AsyncClient(timeout=10) as http:
            # Sequential changes on A, then writers on all three nodes at once.
            for i in range(10):
                await set_price(http, a.url, f"{200 + i}.00", headers)
            await asyncio.gather(*(set_price(http, node.url, f"{300 + 10 * n + i}.00", headers)
                                   for i in range(5) for n, node in enumerate((a, b, c))))
            await set_price(http, b.url, "999.00", headers)
        for client in clients:
            await wait_price(client, "999.00")
        await asyncio.sleep(0.3)  # let anything still on its way arrive
        seen = [patches(client) for client in clients]
        for client in clients:
            assert client.violations == []
            view = client.views[CHANNEL]
            assert view.state == clients[0].views[CHANNEL].state
            assert view.state["items"][SKU]["price"] == "999.00"
            assert view.applied == list(range(start + 1, view.offset + 1))
            await client.close()
        # Concurrent changes to one item may coalesce (a node composes the newest value it
        # knows), but every client sees the very same patches in the same order.
        assert seen[0] == seen[1] == seen[2]
        assert len(seen[0]) >= 11

    asyncio.run(scenario())


def test_a_client_of_a_resumes_on_b_with_no_gap_or_duplicate(cluster):
    a, b = cluster.nodes[:2]
    headers = cluster.write_headers

    async def scenario() -> None:
        client = StreamClient(a.ws_url)
        await client.connect()
        await client.hello(CHANNEL)
        await client.next("snapshot")
        async with httpx.AsyncClient(timeout=10) as http:
            await set_price(http, a.url, "11.00", headers)
            await wait_price(client, "11.00")
            left_at = client.views[CHANNEL].offset
            await client.close()  # A's client goes away; changes keep coming on A and B
            for i in range(6):
                await set_price(http, (a, b)[i % 2].url, f"{12 + i}.00", headers)
        client.url = b.ws_url
        await client.connect()
        await client.hello(CHANNEL, resume=True)
        view = await client.wait_offset(CHANNEL, left_at + 6)
        await asyncio.sleep(0.2)
        assert client.snapshots == 1  # only the first one, on A: B resumed from history
        assert client.violations == []
        # No gap and no duplicate from where it left: every offset after left_at, in order
        # (a later patch, e.g. a pulse binding under a loaded machine, is neither).
        resumed = view.applied[view.applied.index(left_at + 1):]
        assert resumed == list(range(left_at + 1, left_at + 1 + len(resumed)))
        assert len(resumed) >= 6
        assert view.state["items"][SKU]["price"] == "17.00"
        await client.close()

    asyncio.run(scenario())


def test_every_node_answers_with_inventory_changed_on_another(cluster):
    a, b, c = cluster.nodes[:3]
    with httpx.Client(timeout=10) as http:
        response = http.patch(f"{c.url}{ITEM_PATH}", json={"price": "4.44", "stock": 7,
                                                         "confirm": True},
                              headers=cluster.write_headers)
        assert response.status_code == 200, response.text
        deadline = time.monotonic() + 5
        for node in (a, b):
            while True:
                items = http.get(f"{node.url}/api/v1/markets/{MARKET}/items").json()
                item = next(i for i in items if i["sku"] == SKU)
                if (item["price"], item["stock"]) == ("4.44", 7):
                    break
                assert time.monotonic() < deadline, f"{node.name} still shows {item}"
                time.sleep(0.05)


def worker_names(url: str, expected: int, timeout: float = 20) -> set[str]:
    """The node names /healthz answers with over fresh connections (each may reach
    another worker behind the shared port), until `expected` were seen or time is up."""
    names: set[str] = set()
    deadline = time.monotonic() + timeout
    while len(names) < expected and time.monotonic() < deadline:
        with httpx.Client(timeout=5) as http:  # a new connection each time
            names.add(http.get(f"{url}/healthz").json()["node"])
    return names

def test_workers_on_one_sqlite_file_start_together(tmp_path: Path, cluster):
    """`serve --workers 2` on the embedded SQLite database: both workers migrate the same
    new file at start (they take turns), both serve, and their clients get snapshots."""
    sqlite_url = f"sqlite:///{tmp_path / 'workers.db'}"
    found = Deployment(tmp_path, sqlite_url, cluster.redis_url, cluster.prefix + "sqlite:",
                       cluster.content)
    node = found.start("sqlite-pair", extra=("--workers", "2"))[0]
    try:
        names = worker_names(node.url, 2)
        assert len(names) == 2, names

        async def scenario() -> None:
            clients = await subscribed([node] * 6, CHANNEL)
            for client in clients:
                assert client.views[CHANNEL].state["items"][SKU]["price"]
                await client.close()

        asyncio.run(scenario())
    finally:
        node.stop()


def test_workers_share_one_port(tmp_path: Path, cluster):
    """`serve --workers 2`: two processes behind one port, one hub log between them."""
    found = Deployment(tmp_path, cluster.database_url, cluster.redis_url, cluster.prefix,
                       cluster.content)
    node = found.start("pair", extra=("--workers", "2"))[0]
    try:
        names = worker_names(node.url, 2)
        assert len(names) == 2, names

        async def scenario() -> None:
            clients = await subscribed([node] * 8, CHANNEL)
            target = clients[0].views[CHANNEL].offset + 1
            async with httpx.AsyncClient(timeout=10) as http:
                await set_price(http, cluster.nodes[0].url, "6.66", cluster.write_headers)
            for client in clients:
                view = await client.wait_offset(CHANNEL, target)
                assert view.state["items"][SKU]["price"] == "6.66"
                assert client.violations == []
                await client.close()

        asyncio.run(scenario())
    finally:
        node.stop()
        # uvicorn's supervisor stops its workers on SIGTERM; make sure none is left.
        time.sleep(0.2)
        assert node.process.poll() is not None


def test_workers_without_a_shared_broker_are_refused(tmp_path: Path):
    import subprocess

    from support.processes import holobazaar_command

    result = subprocess.run([holobazaar_command(), "serve", "--workers", "2", "--data-dir",
                             str(tmp_path), "--port", "0"], capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 2
    assert "--workers" in result.stderr and "redis://" in result.stderr


def test_bad_or_unreachable_brokers_are_refused_with_the_reason(tmp_path: Path):
    import subprocess

    from support.net import free_port
    from support.processes import holobazaar_command

    bad = subprocess.run([holobazaar_command(), "serve", "--broker-url", "kafka://x",
                          "--data-dir", str(tmp_path)], capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode == 2
    assert "--broker-url" in bad.stderr and "redis://host:port/db" in bad.stderr
    closed = free_port()  # nothing listens there
    down = subprocess.run([holobazaar_command(), "serve", "--broker-url",
                           f"redis://127.0.0.1:{closed}/0", "--port", str(free_port()),
                           "--data-dir", str(tmp_path), "--no-watch"],
                          capture_output=True, text=True, timeout=60)
    assert down.returncode != 0
    assert f"cannot reach Redis at 127.0.0.1:{closed}" in down.stderr + down.stdout


def test_each_single_writer_duty_has_one_holder_among_the_nodes(cluster):
    import redis

    names = {httpx.get(f"{node.url}/healthz", timeout=5).json()["node"]
             for node in cluster.nodes if node.process.poll() is None}
    client = redis.Redis.from_url(cluster.redis_url, decode_responses=True)
    try:
        deadline = time.monotonic() + 10
        for duty in ("show-clock", "reconcile-sweep", "pull-feeds"):
            while client.get(f"{cluster.prefix}lease:{duty}") not in names:
                assert time.monotonic() < deadline, duty
                time.sleep(0.1)
    finally:
        client.close()
