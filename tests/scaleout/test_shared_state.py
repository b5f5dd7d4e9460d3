"""State that must hold across the cluster, whichever node answers: the community
submission limit, the sync spread of a show's cue, and the reconciler's figures."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
import redis

from holobazaar.canonical import state_hash
from holobazaar.inventory.feeds import sign
from scaleout.nodes import MARKET, SYNC_SHOW, SYNC_ZONE, Deployment, subscribed

from support.processes import ServeProcess

pytestmark = [pytest.mark.redis, pytest.mark.postgres]


def live_nodes(cluster: Deployment, n: int = 2) -> list[ServeProcess]:
    alive = [node for node in cluster.nodes if node.process.poll() is None]
    assert len(alive) >= n, "the scale-out deployment lost its nodes"
    return alive[:n]


def test_the_submission_limit_holds_across_nodes(cluster: Deployment):
    a, b = live_nodes(cluster)
    codes = []
    for n in range(8):  # alternating nodes; the limit is a burst of 3 (and 6 an hour)
        node = (a, b)[n % 2]
        response = httpx.post(f"{node.url}/api/v1/submissions", timeout=10, json={
            "kind": "story", "market": MARKET, "title": f"Cluster limit {n}",
            "body": "A story from the stall."})
        codes.append(response.status_code)
        if response.status_code == 429:
            assert int(response.headers["Retry-After"]) > 0
    # Per node, each would have let 3 through (6 in all).
    assert codes == [202, 202, 202, 429, 429, 429, 429, 429], codes


def test_the_console_on_any_node_shows_the_spread_over_every_node(cluster: Deployment):
    a, b = live_nodes(cluster)
    zone = f"market/{MARKET}/zone/{SYNC_ZONE}"
    api = f"/api/v1/shows/{MARKET}/{SYNC_SHOW}"
    skews = (-4.0, 0.0, 6.0)

    async def scenario() -> list[dict]:
        clients = await subscribed([a, a, b], zone)
        async with httpx.AsyncClient(timeout=10, headers=cluster.write_headers) as http:
            response = await http.post(f"{a.url}{api}/go")
            assert response.status_code == 200, response.text
            for skew, client in zip(skews, clients, strict=True):
                cue = (await client.next("cue"))["cue"]
                view = client.views[zone]
                await client.send({"type": "heartbeat", "channel": zone,
                                   "offset": view.offset, "state_hash": state_hash(view.state),
                                   "cue": {"id": cue["id"],
                                           "executed_at": cue["start_time"] + skew}})
            states: list[dict] = []
            async with asyncio.timeout(10):
                while True:
                    states = [(await http.get(f"{node.url}{api}")).json() for node in (a, b)]
                    if all((s["sync"] or {}).get("devices") == 3 and s["devices"] == 3
                           for s in states):  # reported, and connected, on A and B
                        break
                    await asyncio.sleep(0.05)
        for client in clients:
            assert client.violations == []
            await client.close()
        return states

    for state in asyncio.run(scenario()):
        assert state["sync"]["number"] == "1"
        assert state["sync"]["spread_ms"] == 10.0  # -4 on A ... +6 on B
        assert state["devices"] == 3  # 2 connected to A, 1 to B


def test_reconciler_figures_are_the_same_on_every_node(cluster: Deployment):
    a, b = live_nodes(cluster)
    headers = cluster.write_headers
    summary_path = f"/api/v1/reconcile/{MARKET}/summary"
    with httpx.Client(timeout=10, headers=headers) as http:
        secret = http.post(f"{a.url}/api/v1/inventory/{MARKET}/secret").json()["secret"]

        def push(*events: dict) -> None:
            body = json.dumps({"events": list(events)}).encode()
            ts, key = str(int(time.time())), uuid.uuid4().hex
            response = http.post(
                f"{a.url}/api/v1/inventory/{MARKET}/events", content=body,
                headers={"X-Holobazaar-Timestamp": ts,
                         "X-Holobazaar-Signature": sign(secret, ts, key, body),
                         "Idempotency-Key": key,
                         "Content-Type": "application/json"})
            assert response.status_code == 200, response.text

        def summaries() -> list[dict]:
            out = []
            for node in (a, b):
                summary = http.get(f"{node.url}{summary_path}").json()
                summary.pop("feed_lag_seconds")  # moves with each node's clock
                out.append(summary)
            return out

        def settle(identity_open: int) -> list[dict]:
            deadline = time.monotonic() + 10
            while True:
                found = summaries()
                if (all(s["open_mismatches"]["identity"] == identity_open for s in found)
                        and found[0] == found[1]) or time.monotonic() > deadline:
                    return found

        # A bound item removed on node A: an open identity mismatch, raised on A only.
        push({"op": "remove", "sku": "LET-BUTTER"})
        on_a, on_b = settle(1)
        assert on_a["open_mismatches"]["identity"] == 1
        assert on_b == on_a
        assert on_a["counts"]["detected"] >= 1
        # The item is back (pushed on A again): resolved, on every node.
        push({"sku": "LET-BUTTER", "name": "Butterhead lettuce", "price": "1.90",
              "unit": "each"})
        on_a, on_b = settle(0)
        assert on_a["open_mismatches"]["identity"] == 0
        assert on_b == on_a


@contextlib.contextmanager
def feed_source() -> Iterator[tuple[str, Counter]]:
    """A stock system's pull endpoint: an empty feed on any path, requests counted."""
    hits: Counter = Counter()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits[self.path] += 1
            body = b'{"events": []}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()
        server.server_close()


def test_a_feed_changed_on_one_node_is_polled_afresh_by_the_polling_node(cluster: Deployment):
    alive = live_nodes(cluster, 2)
    client = redis.Redis.from_url(cluster.redis_url, decode_responses=True)
    try:
        deadline = time.monotonic() + 10
        names = {httpx.get(f"{n.url}/healthz", timeout=5).json()["node"]: n for n in alive}
        while (holder := client.get(f"{cluster.prefix}lease:pull-feeds")) is None:
            assert time.monotonic() < deadline, "nobody polls pull feeds"
            time.sleep(0.1)
    finally:
        client.close()
    # The change goes through a node that does not poll.
    other = next(n for name, n in names.items() if name != holder)
    path = f"/api/v1/inventory/{MARKET}/feed"

    def wait_for_poll(hits: Counter, source_path: str) -> None:
        deadline = time.monotonic() + 10
        while not hits[source_path]:
            assert time.monotonic() < deadline, f"{source_path} was never polled: {hits}"
            time.sleep(0.05)

    with feed_source() as (source, hits), \
            httpx.Client(timeout=10, headers=cluster.write_headers) as http:
        try:
            for source_path in ("/first", "/second"):  # polled hourly: once, at the change
                response = http.put(f"{other.url}{path}", json={
                    "pull_url": f"{source}{source_path}", "pull_interval": 3600,
                    "disappear": "keep"})
                assert response.status_code == 200, response.text
                wait_for_poll(hits, source_path)
        finally:
            assert http.put(f"{other.url}{path}", json={"pull_url": None}).status_code == 200
