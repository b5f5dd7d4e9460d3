"""Soak test: a market day compressed into a bounded run against real `holobazaar serve`
processes (the repository's content: the greenhaven market, its displays, show and stories).

Everything a day brings, at once and for --minutes (30):

* visitors (WebSocket clients, tests/support/streamclient.py: every patch applied in order)
  arriving and leaving with churn (--visitors concurrent, exponential stays around
  --stay seconds), some joining the show's zone, tapping reactions;
* watchers: a few clients that stay all day (and resume after a node dies) and must end
  holding what a fresh snapshot holds;
* signed feed batches (v2 signatures, inventory/feeds.py `sign`) and curators' manual
  edits (PATCH, a big price change refused with 409 then sent with "confirm": true), on
  disjoint items so the last acknowledged value of each is known;
* the show (standby / GO / next cue / stop) every few minutes, with a performer token;
* uploads of small generated models (POST /api/v1/assets) followed until ready;
* page views (/, /m/, /d/, /t/, /s/, /r/, search, items) and the glitch drill;
* with --nodes 2: PostgreSQL (a fresh database, dropped after) and a private redis-server
  on its own loopback port (never the machine's shared Redis) that is restarted without
  persistence mid-run, and one node SIGKILLed and restarted.

Every --interval seconds (60; 10 with --smoke) it prints, per node, RSS, open descriptors
and asyncio tasks (/metrics `holobazaar_asyncio_tasks`), and for the interval latency
percentiles and error counts. Exit 1 on: any 5xx; any acknowledged change missing from the
final items or their history; a watcher whose state differs from a fresh snapshot or that
saw a gap; RSS, descriptors or tasks still growing in the last third (slope above a small
tolerance and above half the first third's); descriptors or tasks not back near their
starting level once the visitors have gone.

    python bench/soak.py                    # 30 minutes, one node on SQLite
    python bench/soak.py --smoke            # ~75 s, the harness end to end (a test runs it)
    python bench/soak.py --nodes 2 --minutes 10     # PostgreSQL + a private Redis
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import secrets
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import httpx
import websockets

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
from benchlib import die_with_parent, percentile, stop, wait_ready  # noqa: E402
from holobazaar.inventory.feeds import sign  # noqa: E402

from support.databases import PrivateRedis, private_database  # noqa: E402
from support.gltf import glb  # noqa: E402
from support.net import free_port  # noqa: E402
from support.processes import status_kb  # noqa: E402
from support.streamclient import StreamClient  # noqa: E402

MARKET, SHOW, SHOW_ZONE = "greenhaven", "harvest-collective", "orchard-row"
KINDS = ("love", "wow", "hungry", "learn")
PAGES_STATIC = ["/", f"/m/{MARKET}", f"/t/{MARKET}", f"/api/v1/markets/{MARKET}/items",
                "/api/v1/search?q=honey", "/api/v1/search?q=tomato", "/healthz"]
# Tolerated slope in the last third, per minute (RSS in MB; descriptors; tasks).
SLOPE_TOLERANCE = {"rss_mb": 1.0, "fds": 1.0, "tasks": 2.0}
# Descriptors / tasks once the visitors have gone, above the level before they came.
BASELINE_TOLERANCE = {"fds": 15, "tasks": 15}


# ---- servers ----------------------------------------------------------------------------

@dataclass
class Node:
    name: str
    port: int
    command: list[str]
    log: Path
    env: dict
    process: subprocess.Popen | None = None
    up: bool = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def spawn(self) -> None:
        """Start the process (from the main thread: die_with_parent's signal is tied to
        the thread that forks, and a worker thread of asyncio.to_thread ends)."""
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(self.command, stdout=out, stderr=subprocess.STDOUT,
                                            env=self.env, preexec_fn=die_with_parent)

    def start(self) -> None:
        self.spawn()
        wait_ready(self.url, 180, self.process)
        self.up = True


def cli(store: list[str], *args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "holobazaar", *args, *store],
                         capture_output=True, text=True, check=True).stdout.strip()
    return out.splitlines()[-1]


def rss_mb(pid: int) -> float:
    try:
        return status_kb(pid) / 1024
    except OSError:
        return float("nan")


def open_fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


def box_glb(rng: random.Random) -> bytes:
    """A small closed box with random proportions: a model the pipeline accepts, new
    bytes every time (so each upload is processed)."""
    sx, sy, sz = (round(rng.uniform(0.05, 0.4), 4) for _ in range(3))
    corners = [(x * sx, y * sy, z * sz) for x in (0, 1) for y in (0, 1) for z in (0, 1)]
    faces = [(0, 1, 3), (0, 3, 2), (4, 6, 7), (4, 7, 5), (0, 4, 5), (0, 5, 1),
             (2, 3, 7), (2, 7, 6), (0, 2, 6), (0, 6, 4), (1, 5, 7), (1, 7, 3)]
    positions = struct.pack(f"<{len(corners) * 3}f", *(c for p in corners for c in p))
    indices = struct.pack(f"<{len(faces) * 3}H", *(i for f in faces for i in f))
    indices += b"\0" * (-len(indices) % 4)
    binary = positions + indices
    document = {
        "asset": {"version": "2.0"}, "scene": 0, "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0}],
        "meshes": [{"primitives": [{"attributes": {"POSITION": 0}, "indices": 1}]}],
        "buffers": [{"byteLength": len(binary)}],
        "bufferViews": [{"buffer": 0, "byteLength": len(positions), "target": 34962},
                        {"buffer": 0, "byteOffset": len(positions),
                         "byteLength": len(faces) * 6, "target": 34963}],
        "accessors": [{"bufferView": 0, "componentType": 5126, "type": "VEC3",
                       "count": len(corners), "min": [0, 0, 0], "max": [sx, sy, sz]},
                      {"bufferView": 1, "componentType": 5123, "type": "SCALAR",
                       "count": len(faces) * 3}],
    }
    return glb(document, binary)


# ---- the day ------------------------------------------------------------------------------

@dataclass
class Stats:
    latencies: dict[str, list[float]] = field(default_factory=dict)  # this interval
    all_latencies: dict[str, list[float]] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)  # "kind status" -> count
    server_errors: list[str] = field(default_factory=list)  # 5xx examples
    unexpected: list[str] = field(default_factory=list)  # other wrong answers
    transport_errors: dict[str, int] = field(default_factory=dict)
    ws_errors: dict[str, int] = field(default_factory=dict)  # error frame codes
    violations: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    interval_5xx: int = 0
    interval_unexpected: int = 0

    def count(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n

    def took(self, kind: str, ms: float) -> None:
        self.latencies.setdefault(kind, []).append(ms)
        self.all_latencies.setdefault(kind, []).append(ms)


class Day:
    def __init__(self, args: argparse.Namespace, nodes: list[Node], tokens: dict[str, str],
                 secret: str, redis: PrivateRedis | None) -> None:
        self.args = args
        self.nodes = nodes
        self.tokens = tokens
        self.secret = secret
        self.redis = redis
        self.rng = random.Random(args.seed)
        self.stats = Stats()
        self.started = time.monotonic()
        self.end = self.started + args.minutes * 60
        self.stopping = asyncio.Event()
        self.visitors_now = 0
        self.visitor_seq = 0
        self.node_turn = 0
        self.items: dict[str, dict] = {}
        self.truth: dict[str, dict] = {}  # sku -> last acknowledged {"price", "stock"}
        # (source, sku, field, value) of every change answered 2xx, in order
        self.acked: list[tuple[str, str, str, str]] = []
        self.feed_skus: list[str] = []
        self.manual_skus: list[str] = []
        self.displays: list[dict] = []
        self.stories: list[str] = []
        self.recipes: list[str] = []
        self.watchers: list[StreamClient] = []
        self.samples: list[dict] = []
        self.disturbances: list[str] = []
        self.disturbance_times: list[tuple[float, str]] = []
        # (from, to) seconds of the Redis restart; to is None while it is down.
        self.redis_down: tuple[float, float | None] | None = None
        self.cues_seen = 0

    # -- helpers --
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def live(self) -> list[Node]:
        return [n for n in self.nodes if n.up] or self.nodes

    def pick(self) -> Node:
        live = self.live()
        self.node_turn += 1
        return live[self.node_turn % len(live)]

    def auth(self, role: str) -> dict:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    async def request(self, http: httpx.AsyncClient, kind: str, method: str, path: str,
                      expect: tuple[int, ...] = (200,), retry: bool = False,
                      **kwargs) -> httpx.Response | None:
        """One request to a live node; a transport failure (a node being killed) is retried
        on another node when `retry` (changes: the same idempotent request again)."""
        for attempt in range(30 if retry else 1):
            node = self.pick()
            t0 = time.perf_counter()
            try:
                response = await http.request(method, node.url + path, **kwargs)
            except httpx.HTTPError as exc:
                name = type(exc).__name__
                self.stats.transport_errors[name] = self.stats.transport_errors.get(name, 0) + 1
                if self.stopping.is_set() and not retry:
                    return None
                await asyncio.sleep(0.5 + attempt * 0.2)
                continue
            ms = (time.perf_counter() - t0) * 1000
            self.stats.took(kind, ms)
            key = f"{kind} {response.status_code}"
            self.stats.statuses[key] = self.stats.statuses.get(key, 0) + 1
            if self.health_reports_outage(path, response):
                self.stats.count("health checks reporting the Redis outage")
            elif response.status_code >= 500:
                self.stats.interval_5xx += 1
                self.stats.server_errors.append(
                    f"t={self.elapsed():.0f}s {node.name} {method} {path} -> "
                    f"{response.status_code} {response.text[:300]!r}")
            elif response.status_code not in expect:
                self.stats.interval_unexpected += 1
                self.stats.unexpected.append(
                    f"t={self.elapsed():.0f}s {node.name} {method} {path} -> "
                    f"{response.status_code} {response.text[:300]!r}")
            return response
        return None

    def health_reports_outage(self, path: str, response: httpx.Response) -> bool:
        """/healthz answering 503 "broker unreachable" while Redis restarts is the health
        check doing its job (a balancer drains the node), not a server error."""
        if path != "/healthz" or response.status_code != 503 or self.redis_down is None:
            return False
        start, end = self.redis_down
        during = self.elapsed() >= start and (end is None or self.elapsed() <= end + 5)
        return during and "broker unreachable" in response.text

    async def pause(self, seconds: float) -> bool:
        """Sleep unless the day ends first; False when it has."""
        remaining = self.end - time.monotonic()
        if remaining <= 0 or self.stopping.is_set():
            return False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), min(seconds, remaining))
        return time.monotonic() < self.end and not self.stopping.is_set()

    # -- setup --
    async def load(self, http: httpx.AsyncClient) -> None:
        node = self.nodes[0]
        items = (await http.get(f"{node.url}/api/v1/markets/{MARKET}/items")).json()
        self.items = {i["sku"]: i for i in items}
        skus = sorted(self.items)
        self.rng.shuffle(skus)
        half = len(skus) // 2
        self.feed_skus, self.manual_skus = sorted(skus[:half]), sorted(skus[half:])
        for sku in skus:
            self.truth[sku] = {"price": self.items[sku]["price"],
                               "stock": self.items[sku]["stock"]}
        self.displays = (await http.get(f"{node.url}/api/v1/markets/{MARKET}/displays")).json()
        for kind in ("stories", "recipes"):
            page = (await http.get(f"{node.url}/api/v1/{kind}?limit=200")).json()
            setattr(self, kind, [d["slug"] for d in page["results"]])

    # -- visitors --
    async def visitors(self) -> None:
        tasks: set[asyncio.Task] = set()
        while await self.pause(0.05 if self.visitors_now < self.args.visitors else 0.2):
            # Arrivals spread out: at most a few per tick, so connects are not one burst.
            for _ in range(min(5, self.args.visitors - self.visitors_now)):
                self.visitors_now += 1
                task = asyncio.create_task(self.visitor())
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        await asyncio.gather(*tasks, return_exceptions=True)

    async def visitor(self) -> None:
        self.visitor_seq += 1
        n = self.visitor_seq
        try:
            display = self.rng.choice(self.displays)
            channels = [display["channel"]]
            if self.rng.random() < 0.3:
                channels.append(f"market/{MARKET}/zone/{SHOW_ZONE}")
            node = self.pick()
            client = StreamClient(node.ws_url)
            t0 = time.perf_counter()
            try:
                await client.connect()
                await client.hello(*channels)
                for _ in channels:
                    await client.next("snapshot", timeout=15)
            except (OSError, TimeoutError, websockets.WebSocketException) as exc:
                name = f"connect {type(exc).__name__}"
                self.stats.transport_errors[name] = self.stats.transport_errors.get(name, 0) + 1
                with contextlib.suppress(Exception):
                    await client.close()
                return
            self.stats.took("ws connect+snapshot", (time.perf_counter() - t0) * 1000)
            self.stats.count("visits")
            stay = min(self.rng.expovariate(1 / self.args.stay), self.args.stay * 5)
            leave = time.monotonic() + stay
            device = f"soak-visitor-{n:08d}-{self.rng.randrange(16 ** 6):06x}"
            while time.monotonic() < leave and client.close_code is None:
                if not await self.pause(min(leave - time.monotonic(),
                                            self.rng.uniform(3, 15))):
                    break
                if client.close_code is not None or time.monotonic() >= leave:
                    break
                if self.rng.random() < 0.5:
                    with contextlib.suppress(websockets.WebSocketException):
                        await client.send({"type": "reaction", "market": MARKET,
                                           "display": display["id"],
                                           "kind": self.rng.choice(KINDS), "device": device})
                        self.stats.count("reactions")
            self.cues_seen += len(client.cues)
            await self.leave(client)
        finally:
            self.visitors_now -= 1

    async def leave(self, client: StreamClient) -> None:
        dropped = client.close_code is not None
        with contextlib.suppress(Exception):
            await client.close()
        if dropped:
            self.stats.count("visits dropped by the server side")
        for error in client.errors:
            code = error.get("code", "?")
            self.stats.ws_errors[code] = self.stats.ws_errors.get(code, 0) + 1
        self.stats.violations.extend(client.violations)

    async def watcher(self, index: int) -> None:
        """Stays all day on a display (+ the show's zone); resumes on another node when
        its node dies."""
        display = self.displays[index % len(self.displays)]
        channels = [display["channel"], f"market/{MARKET}/zone/{SHOW_ZONE}"]
        client = StreamClient(self.pick().ws_url)
        self.watchers.append(client)
        await client.connect()
        await client.hello(*channels)
        for _ in channels:
            await client.next("snapshot", timeout=30)
        while await self.pause(1):
            if client.ws.close_code is None:
                continue
            self.stats.count("watcher reconnects")
            while not self.stopping.is_set():
                client.url = self.pick().ws_url
                try:
                    await client.connect()
                    await client.hello(*channels, resume=True)
                    break
                except (OSError, TimeoutError, websockets.WebSocketException):
                    await asyncio.sleep(0.5)

    # -- changes --
    async def feed(self, http: httpx.AsyncClient) -> None:
        path = f"/api/v1/inventory/{MARKET}/events"
        while await self.pause(self.args.feed_every * self.rng.uniform(0.5, 1.5)):
            picked = self.rng.sample(self.feed_skus, self.rng.randint(1, 4))
            events, changes = [], []
            for sku in picked:
                event: dict = {"sku": sku}
                # Always a real change: the server keeps no history row for an event that
                # changes nothing (it counts it "unchanged"), and every acknowledged change
                # is looked for in the history at the end.
                if self.rng.random() < 0.6:
                    old = Decimal(self.truth[sku]["price"])
                    new = old * Decimal(str(round(self.rng.uniform(0.88, 1.12), 3)))
                    new = min(max(new, Decimal("0.50")), Decimal("60")).quantize(Decimal("0.01"))
                    if new == old:
                        new = old + Decimal("0.01") if old < 60 else old - Decimal("0.01")
                    event["price"] = str(new)
                    changes.append((sku, "price", str(new)))
                else:
                    event["stock"] = self.rng.choice(
                        [n for n in range(61) if n != self.truth[sku].get("stock")])
                    changes.append((sku, "stock", str(event["stock"])))
                events.append(event)
            body = json.dumps({"events": events}).encode()
            ts, key = str(int(time.time())), uuid.uuid4().hex
            headers = {"X-Holobazaar-Timestamp": ts, "Idempotency-Key": key,
                       "X-Holobazaar-Signature": sign(self.secret, ts, key, body),
                       "Content-Type": "application/json"}
            # Retried as is (same key, same signature) when a node dies under it: the
            # server answers a retry from the stored batch.
            response = await self.request(http, "feed batch", "POST", path, retry=True,
                                          content=body, headers=headers)
            if response is None or response.status_code != 200:
                continue
            result = response.json()
            if result.get("held") or result.get("rejected") or result.get("circuit_breaker") \
                    or result.get("unchanged") or result.get("ignored"):
                self.stats.unexpected.append(f"feed batch not applied as sent: {result}")
                self.stats.interval_unexpected += 1
                continue
            self.acknowledge("feed", changes)
            self.stats.count("feed batches")

    def acknowledge(self, source: str, changes: list[tuple[str, str, str]]) -> None:
        for sku, name, value in changes:
            self.truth[sku][name] = value if name == "price" else int(value)
            self.acked.append((source, sku, name, value))

    async def manual(self, http: httpx.AsyncClient) -> None:
        n = 0
        while await self.pause(self.args.edit_every * self.rng.uniform(0.5, 1.5)):
            n += 1
            sku = self.rng.choice(self.manual_skus)
            path = f"/api/v1/markets/{MARKET}/items/{sku}"
            old = Decimal(self.truth[sku]["price"])
            if n % 4 == 0 and old > 0:
                new = str((old * Decimal("1.7")).quantize(Decimal("0.01")))
                refused = await self.request(http, "edit (big, unconfirmed)", "PATCH", path,
                                             expect=(409,), retry=True,
                                             json={"price": new}, headers=self.auth("curator"))
                if refused is None or refused.status_code != 409:
                    continue
                body: dict = {"price": new, "confirm": True}
            elif self.rng.random() < 0.5:
                moved = (old * Decimal(str(round(self.rng.uniform(0.9, 1.1), 3)))) \
                    .quantize(Decimal("0.01"))
                # A real change: the server stores and audits nothing for a no-op edit.
                body = {"price": str(moved if moved != old else old + Decimal("0.01"))}
            else:
                body = {"stock": self.rng.choice(
                    [n for n in range(81) if n != self.truth[sku].get("stock")])}
            response = await self.request(http, "edit", "PATCH", path, retry=True, json=body,
                                          headers=self.auth("curator"))
            if response is None or response.status_code != 200:
                continue
            item = response.json()
            changes = [(sku, k, str(v)) for k, v in body.items() if k != "confirm"]
            for _, name, value in changes:
                got = item.get(name)
                if (Decimal(str(got)) != Decimal(value)) if name == "price" else \
                        (got != int(value)):
                    self.stats.unexpected.append(f"PATCH {sku} {body} answered {item}")
            self.acknowledge("manual", changes)
            self.stats.count("manual edits")

    # -- the rest of the day --
    async def shows(self, http: httpx.AsyncClient) -> None:
        base = f"/api/v1/shows/{MARKET}/{SHOW}"
        headers = self.auth("performer")
        if not await self.pause(self.args.show_first):
            return
        while True:
            await self.request(http, "show", "POST", f"{base}/stop", headers=headers)
            await self.request(http, "show", "POST", f"{base}/standby",
                               json={"number": "1"}, headers=headers)
            await self.pause(0.5)
            go = await self.request(http, "show", "POST", f"{base}/go", headers=headers)
            if go is not None and go.status_code == 200:
                self.stats.count("show GOs")
            if not await self.pause(min(20.0, self.args.show_every / 3)):
                break
            await self.request(http, "show", "POST", f"{base}/go", headers=headers)
            self.stats.count("show GOs")
            await self.pause(min(10.0, self.args.show_every / 4))
            await self.request(http, "show", "POST", f"{base}/stop", headers=headers)
            if not await self.pause(self.args.show_every):
                break
        await self.request(http, "show", "POST", f"{base}/stop", headers=headers)

    async def uploads(self, http: httpx.AsyncClient) -> None:
        if not await self.pause(self.args.upload_first):
            return
        n = 0
        while True:
            n += 1
            files = [("files", (f"soak-{n}.glb", box_glb(self.rng), "model/gltf-binary"))]
            response = await self.request(
                http, "upload", "POST", "/api/v1/assets", expect=(202,), retry=True,
                files=files, data={"market": MARKET, "name": f"soak-box-{n}"},
                headers=self.auth("curator"))
            if response is not None and response.status_code == 202:
                asset = response.json()
                deadline = time.monotonic() + 180
                while asset.get("status") in ("queued", "processing") and \
                        time.monotonic() < deadline:
                    await asyncio.sleep(1)
                    got = await self.request(http, "asset status", "GET",
                                             f"/api/v1/assets/{asset['id']}")
                    if got is not None and got.status_code == 200:
                        asset = got.json()
                if asset.get("status") == "ready":
                    self.stats.count("uploads ready")
                else:
                    self.stats.unexpected.append(f"upload {n} ended {asset.get('status')}: "
                                                 f"{asset.get('error')}")
                    self.stats.interval_unexpected += 1
            if not await self.pause(self.args.upload_every):
                break

    async def pages(self, http: httpx.AsyncClient) -> None:
        while await self.pause(self.rng.expovariate(self.args.page_rate)):
            roll = self.rng.random()
            if roll < 0.35:
                path = f"/d/{MARKET}/{self.rng.choice(self.displays)['id']}"
            elif roll < 0.5 and self.stories:
                path = f"/s/{self.rng.choice(self.stories)}"
            elif roll < 0.65 and self.recipes:
                path = f"/r/{self.rng.choice(self.recipes)}"
            else:
                path = self.rng.choice(PAGES_STATIC)
            kind = "page " + ("/" + path.split("/")[1] if path.count("/") > 1 and
                              not path.startswith("/api") else path.split("?")[0])
            if path.startswith("/api/v1/search"):
                kind = "search"
            elif path.startswith("/api"):
                kind = "items list"
            await self.request(http, kind, "GET", path)
            self.stats.count("page views")

    async def drills(self, http: httpx.AsyncClient) -> None:
        n = 0
        while await self.pause(self.args.drill_every):
            n += 1
            response = await self.request(http, "drill", "POST",
                                          f"/api/v1/reconcile/{MARKET}/drill",
                                          json={"seed": self.args.seed * 1000 + n,
                                                "displays": 3}, headers=self.auth("admin"))
            if response is not None and response.status_code == 200:
                scrambled = response.json()["scrambled"]
                self.stats.count("drills")
                self.stats.count("drill scrambles", len(scrambled))
                self.stats.count("drill scrambles caught by the guard",
                                 sum(1 for s in scrambled if s["guarded"]))

    async def disturb(self) -> None:
        """Two nodes: restart the private Redis (no persistence) at 40% of the day and
        SIGKILL + restart the second node at 65%."""
        day = self.args.minutes * 60
        if not await self.pause(day * 0.4):
            return
        assert self.redis is not None
        self.disturbances.append(f"t={self.elapsed():.0f}s redis restart")
        self.redis_down = (self.elapsed(), None)
        print(f"[t={self.elapsed():.0f}s] restarting the private redis-server "
              f"(port {self.redis.port}, no persistence)", flush=True)
        await asyncio.to_thread(self.redis.stop)
        await asyncio.sleep(1.0)
        self.redis.spawn()
        await asyncio.to_thread(self.redis.wait)
        for node in self.nodes:
            await asyncio.to_thread(wait_ready, node.url, 60, node.process)
        self.redis_down = (self.redis_down[0], self.elapsed())
        print(f"[t={self.elapsed():.0f}s] redis back, nodes healthy", flush=True)
        if not await self.pause(day * 0.25):
            return
        victim = self.nodes[-1]
        self.disturbances.append(f"t={self.elapsed():.0f}s SIGKILL {victim.name}")
        self.disturbance_times.append((self.elapsed(), f"SIGKILL {victim.name}"))
        print(f"[t={self.elapsed():.0f}s] SIGKILL {victim.name} (pid {victim.process.pid})",
              flush=True)
        victim.up = False
        victim.process.send_signal(signal.SIGKILL)
        await asyncio.to_thread(victim.process.wait)
        await asyncio.sleep(2.0)
        victim.spawn()
        await asyncio.to_thread(wait_ready, victim.url, 180, victim.process)
        victim.up = True
        print(f"[t={self.elapsed():.0f}s] {victim.name} restarted (pid {victim.process.pid})",
              flush=True)

    # -- figures --
    async def sample(self, http: httpx.AsyncClient, label: str) -> dict:
        row: dict = {"t_s": round(self.elapsed()), "label": label,
                     "visitors": self.visitors_now, "nodes": {}}
        for node in self.nodes:
            pid = node.process.pid if node.process else 0
            figures = {"rss_mb": round(rss_mb(pid), 1), "fds": open_fds(pid), "tasks": None,
                       "subscribers": None}
            with contextlib.suppress(httpx.HTTPError, ValueError):
                metrics = await http.get(f"{node.url}/metrics", timeout=10)
                if metrics.status_code >= 500:
                    self.stats.interval_5xx += 1
                    self.stats.server_errors.append(
                        f"t={self.elapsed():.0f}s {node.name} GET /metrics -> "
                        f"{metrics.status_code} {metrics.text[:300]!r}")
                text = metrics.text
                subscribers = 0
                for line in text.splitlines():
                    if line.startswith("holobazaar_asyncio_tasks "):
                        figures["tasks"] = int(float(line.split()[1]))
                    elif line.startswith("holobazaar_channel_subscribers{"):
                        subscribers += int(float(line.split()[1]))
                figures["subscribers"] = subscribers
            row["nodes"][node.name] = figures
        lat = self.stats.latencies
        everything = [ms for kind, values in lat.items() if kind != "ws connect+snapshot"
                      for ms in values]
        connects = lat.get("ws connect+snapshot", [])
        row.update({"requests": len(everything),
                    "http_p50_ms": round(percentile(everything, 50), 1),
                    "http_p99_ms": round(percentile(everything, 99), 1),
                    "http_max_ms": round(max(everything), 1) if everything else None,
                    "connects": len(connects),
                    "ws_p50_ms": round(percentile(connects, 50), 1),
                    "ws_p99_ms": round(percentile(connects, 99), 1),
                    "5xx": self.stats.interval_5xx, "unexpected": self.stats.interval_unexpected,
                    "transport": sum(self.stats.transport_errors.values()),
                    "load1": round(os.getloadavg()[0], 2)})
        self.stats.latencies = {}
        self.stats.interval_5xx = self.stats.interval_unexpected = 0
        return row

    def print_row(self, row: dict) -> None:
        nodes = "  ".join(f"{name}: {f['rss_mb']:6.1f} MB {f['fds']:4d} fd "
                          f"{f['tasks'] if f['tasks'] is not None else '?':>4} tasks"
                          for name, f in row["nodes"].items())
        print(f"{row['t_s']:5d}s {row['label']:<5} visitors {row['visitors']:4d} | {nodes} | "
              f"http n={row['requests']:5d} p50 {row['http_p50_ms']:7.1f} p99 "
              f"{row['http_p99_ms']:7.1f} ms | ws n={row['connects']:4d} p50 "
              f"{row['ws_p50_ms']:7.1f} p99 {row['ws_p99_ms']:7.1f} ms | 5xx {row['5xx']} "
              f"other {row['unexpected']} transport {row['transport']} | load {row['load1']}",
              flush=True)

    async def monitor(self, http: httpx.AsyncClient) -> None:
        while await self.pause(self.args.interval):
            row = await self.sample(http, "load")
            self.samples.append(row)
            self.print_row(row)

    # -- the end --
    async def verify(self, http: httpx.AsyncClient) -> list[str]:
        failures: list[str] = []
        node = self.live()[0]
        # Watchers: what they hold must be what a fresh snapshot holds, with no gap seen.
        await asyncio.sleep(2.0)
        equal = 0
        for client in self.watchers:
            fresh = StreamClient(node.ws_url)
            await fresh.connect()
            channels = list(client.views)
            await fresh.hello(*channels)
            for _ in channels:
                await fresh.next("snapshot", timeout=15)
            same = all(client.views[c].state == fresh.views[c].state for c in channels)
            equal += same
            if not same:
                failures.append(f"a watcher's state of {channels} differs from a fresh "
                                f"snapshot")
            await fresh.close()
            self.stats.violations.extend(client.violations)
            self.cues_seen += len(client.cues)
            await self.leave(client)
        self.stats.count("watchers equal to a fresh snapshot", equal)
        # Every acknowledged change: in the final items and in the item's history.
        items = {i["sku"]: i for i in (await http.get(
            f"{node.url}/api/v1/markets/{MARKET}/items")).json()}
        lost = []
        for sku, want in self.truth.items():
            got = items.get(sku)
            if got is None or Decimal(str(got["price"])) != Decimal(str(want["price"])) or \
                    got["stock"] != want["stock"]:
                final = got and {k: got[k] for k in ("price", "stock")}
                lost.append(f"{sku}: acknowledged {want}, final {final}")
        lost += await self.in_histories(http, node)
        if lost:
            failures.append(f"{len(lost)} acknowledged change(s) lost, e.g. {lost[:5]}")
        return failures


    async def in_histories(self, http: httpx.AsyncClient, node: Node) -> list[str]:
        """Feed changes in the item's feed history; every price in its public history."""
        lost: list[str] = []
        found = 0
        for sku in sorted({a[1] for a in self.acked}):
            feed: set[tuple[str, str]] = set()
            response = await http.get(
                f"{node.url}/api/v1/inventory/{MARKET}/items/{sku}/history",
                headers=self.auth("curator"), timeout=30)
            for record in response.json():
                data = json.loads(record["data"]) if isinstance(record["data"], str) \
                    else record["data"]
                for name in ("price", "stock"):
                    if data.get(name) is not None:
                        feed.add((name, canonical(name, data[name])))
            prices: set[str] = set()
            cursor: int | None = 0
            while cursor is not None:
                page = (await http.get(f"{node.url}/api/v1/markets/{MARKET}/items/{sku}/history",
                                       params={"cursor": cursor, "limit": 1000},
                                       timeout=30)).json()
                prices |= {canonical("price", r["price"]) for r in page["records"]
                           if r.get("price") is not None}
                cursor = page["next_cursor"]
            for source, s, name, value in self.acked:
                if s != sku:
                    continue
                ok = True
                if source == "feed" and (name, canonical(name, value)) not in feed:
                    ok = False
                    lost.append(f"{sku}: acknowledged feed {name}={value} not in its history")
                if name == "price" and canonical(name, value) not in prices:
                    ok = False
                    lost.append(f"{sku}: acknowledged {source} price {value} not in its "
                                f"public price history")
                found += ok
        self.stats.count("acknowledged changes", len(self.acked))
        self.stats.count("acknowledged changes found in histories", found)
        return lost


def canonical(name: str, value: object) -> str:
    return str(Decimal(str(value)).normalize()) if name == "price" else str(int(value))


def audit_check(store: list[str], acked: list[tuple[str, str, str, str]]) -> tuple[dict, list[str]]:
    """After the day: the audit chain verifies, and every acknowledged manual change is an
    entry of it (`holobazaar audit export`)."""
    failures = []
    verify = subprocess.run([sys.executable, "-m", "holobazaar", "audit", "verify", *store],
                            capture_output=True, text=True)
    if verify.returncode != 0:
        failures.append(f"audit verify: {(verify.stdout + verify.stderr).strip()[-500:]}")
    with tempfile.NamedTemporaryFile(suffix=".jsonl") as out:
        subprocess.run([sys.executable, "-m", "holobazaar", "audit", "export", "--out",
                        out.name, *store], check=True, capture_output=True)
        entries = [json.loads(line) for line in Path(out.name).read_text().splitlines()
                   if line.strip()]
    manual: dict[str, list[dict]] = {}
    for entry in entries:
        if entry["action"].startswith("inventory.manual."):
            manual.setdefault(entry["detail"]["sku"], []).append(entry["detail"]["change"])
    missing = []
    counted = 0
    for source, sku, name, value in acked:
        if source != "manual":
            continue
        counted += 1
        if not any(name in change and canonical(name, change[name]) == canonical(name, value)
                   for change in manual.get(sku, [])):
            missing.append(f"{sku}: acknowledged manual {name}={value} not in the audit log")
    if missing:
        failures.append(f"{len(missing)} acknowledged manual change(s) missing from the audit "
                        f"log, e.g. {missing[:5]}")
    return {"audit_entries": len(entries), "audit_verify": verify.stdout.strip()[:300],
            "manual_changes_in_audit": counted - len(missing)}, failures


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope (per minute) of (seconds, value) points."""
    if len(points) < 2:
        return 0.0
    xs = [p[0] / 60 for p in points]
    ys = [p[1] for p in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else 0.0


def growth(samples: list[dict], node: str, after: float = -1) -> tuple[dict, list[str]]:
    """Slopes of the first and last thirds (of the samples after `after`, a restart)."""
    figures, failures = {}, []
    samples = [s for s in samples if s["t_s"] > after]
    for metric, tolerance in SLOPE_TOLERANCE.items():
        points = [(s["t_s"], s["nodes"][node][metric]) for s in samples
                  if s["nodes"][node].get(metric) is not None and s["nodes"][node][metric] >= 0]
        third = len(points) // 3
        if third < 3 or points[-1][0] - points[0][0] < 300:  # too short to judge
            figures[metric] = None
            continue
        first, last = slope(points[:third]), slope(points[-third:])
        figures[metric] = {"first_third_per_min": round(first, 3),
                           "last_third_per_min": round(last, 3)}
        if last > tolerance and last > 0.5 * max(first, 0.0):
            failures.append(f"{node} {metric} still growing: {last:+.2f}/min in the last third "
                            f"(first third {first:+.2f}/min, tolerance {tolerance}/min)")
    return figures, failures


async def run_day(args: argparse.Namespace, nodes: list[Node], tokens: dict[str, str],
                  secret: str, redis: PrivateRedis | None) -> dict:
    day = Day(args, nodes, tokens, secret, redis)
    limits = httpx.Limits(max_connections=40, max_keepalive_connections=20)
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        await day.load(http)
        baseline = await day.sample(http, "start")
        day.print_row(baseline)
        watchers = [asyncio.create_task(day.watcher(i)) for i in range(args.watchers)]
        work = [day.visitors(), day.feed(http), day.manual(http), day.shows(http),
                day.uploads(http), day.pages(http), day.drills(http), day.monitor(http)]
        if len(nodes) > 1:
            work.append(day.disturb())
        day.started = time.monotonic()
        day.end = day.started + args.minutes * 60
        results = await asyncio.gather(*work, return_exceptions=True)
        day.stopping.set()
        await asyncio.gather(*watchers, return_exceptions=True)
        crashed = [f"{type(r).__name__}: {r}" for r in results if isinstance(r, BaseException)]
        for node in nodes:  # a node that was being restarted when the day ended
            if not node.up and node.process is not None:
                await asyncio.to_thread(wait_ready, node.url, 120, node.process)
                node.up = True
        failures = await day.verify(http)
        # The visitors have gone: descriptors and tasks back near where they started.
        await asyncio.sleep(5.0)
        quiet = await day.sample(http, "quiet")
        day.print_row(quiet)
    failures += [f"a soak task crashed: {c}" for c in crashed]
    stats = day.stats
    if stats.server_errors:
        failures.append(f"{len(stats.server_errors)} 5xx answer(s), e.g. "
                        f"{stats.server_errors[:3]}")
    if stats.unexpected:
        failures.append(f"{len(stats.unexpected)} unexpected answer(s), e.g. "
                        f"{stats.unexpected[:3]}")
    if stats.violations:
        failures.append(f"{len(stats.violations)} stream violation(s) (gap, duplicate, "
                        f"hash), e.g. {stats.violations[:3]}")
    growth_figures = {}
    for node in nodes:
        restarted = [t for t, d in day.disturbance_times if d == f"SIGKILL {node.name}"]
        figures, problems = growth(day.samples, node.name, max(restarted, default=-1))
        growth_figures[node.name] = figures
        failures += problems
        for metric, tolerance in BASELINE_TOLERANCE.items():
            before = baseline["nodes"][node.name][metric]
            after = quiet["nodes"][node.name][metric]
            if before is not None and after is not None and not restarted and \
                    after - before > tolerance:
                failures.append(f"{node.name} {metric}: {before} before the visitors came, "
                                f"{after} after they left (tolerance {tolerance})")
    latency = {kind: {"n": len(v), "p50": round(percentile(v, 50), 1),
                      "p99": round(percentile(v, 99), 1), "max": round(max(v), 1)}
               for kind, v in sorted(stats.all_latencies.items())}
    return {"minutes": args.minutes, "nodes": len(nodes), "visitors": args.visitors,
            "samples": [baseline, *day.samples, quiet], "growth": growth_figures,
            "latency_ms": latency, "counts": dict(sorted(stats.counts.items())),
            "statuses": dict(sorted(stats.statuses.items())),
            "transport_errors": stats.transport_errors, "ws_error_codes": stats.ws_errors,
            "server_errors": stats.server_errors[:20], "unexpected": stats.unexpected[:20],
            "cues_seen": day.cues_seen, "disturbances": day.disturbances,
            "failures": failures, "nproc": os.cpu_count(), "_acked": day.acked}


def report(out: dict) -> None:
    print("\nlatency by kind (ms):")
    for kind, f in out["latency_ms"].items():
        print(f"  {kind:<28} n={f['n']:6d}  p50 {f['p50']:8.1f}  p99 {f['p99']:8.1f}  "
              f"max {f['max']:8.1f}")
    print("counts: " + ", ".join(f"{k} {v}" for k, v in out["counts"].items()))
    print(f"cues received by visitors and watchers: {out['cues_seen']}")
    print(f"statuses: {out['statuses']}")
    if out["transport_errors"]:
        print(f"transport errors (nodes being killed, restarts): {out['transport_errors']}")
    if out["ws_error_codes"]:
        print(f"error frames by code: {out['ws_error_codes']}")
    for name, figures in out["growth"].items():
        print(f"growth {name}: {figures}")
    if out["disturbances"]:
        print(f"disturbances: {out['disturbances']}")
    print(f"audit log: {out.get('audit_entries')} entries, "
          f"{out.get('manual_changes_in_audit')} acknowledged manual changes in it; "
          f"verify: {out.get('audit_verify')}")
    if out["failures"]:
        print("\nFAILED:")
        for failure in out["failures"]:
            print(f"  - {failure}")
    else:
        print("\nOK: no 5xx, no lost acknowledged change, no stream violation, "
              "memory/descriptors/tasks level")


def log_problems(logs: list[Path]) -> dict:
    found = {}
    for log in logs:
        text = log.read_text(errors="replace") if log.exists() else ""
        found[log.name] = {"tracebacks": text.count("Traceback (most recent call last)"),
                           "error_lines": sum(1 for line in text.splitlines()
                                              if " ERROR " in line or '"ERROR"' in line)}
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, help="length of the day [30; smoke 1.25]")
    parser.add_argument("--smoke", action="store_true", help="a short run of the harness")
    parser.add_argument("--nodes", type=int, choices=(1, 2), default=1)
    parser.add_argument("--visitors", type=int, help="concurrent visitors [200; smoke 30]")
    parser.add_argument("--stay", type=float, help="mean visit, s [90; smoke 12]")
    parser.add_argument("--watchers", type=int, default=4, help="all-day clients [4]")
    parser.add_argument("--interval", type=float, help="figures every N s [60; smoke 10]")
    parser.add_argument("--feed-every", type=float, help="s between feed batches [4; smoke 1]")
    parser.add_argument("--edit-every", type=float, help="s between manual edits [10; smoke 2]")
    parser.add_argument("--show-every", type=float, help="s between shows [240; smoke 30]")
    parser.add_argument("--upload-every", type=float, help="s between uploads [300; smoke 60]")
    parser.add_argument("--drill-every", type=float, help="s between drills [180; smoke 20]")
    parser.add_argument("--page-rate", type=float, help="page views per s [3; smoke 5]")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--postgres-url", default=os.environ.get(
        "HOLOBAZAAR_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
        help="--nodes 2: a server to create (and drop) a fresh database on")
    parser.add_argument("--out", type=Path, help="write the figures as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    smoke = args.smoke
    defaults = {"minutes": 1.25 if smoke else 30, "visitors": 30 if smoke else 200,
                "stay": 12 if smoke else 90, "interval": 10 if smoke else 60,
                "feed_every": 1 if smoke else 4, "edit_every": 2 if smoke else 10,
                "show_every": 30 if smoke else 240, "upload_every": 60 if smoke else 300,
                "drill_every": 20 if smoke else 180, "page_rate": 5 if smoke else 3}
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.show_first = min(10.0, args.minutes * 60 / 6)
    args.upload_first = min(15.0, args.minutes * 60 / 5)

    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4096)), hard))
    tmp = Path(tempfile.mkdtemp(prefix="hb-soak-"))
    data = tmp / "var"
    redis: PrivateRedis | None = None
    nodes: list[Node] = []
    with contextlib.ExitStack() as stack:
        try:
            store = ["--data-dir", str(data)]
            serve_extra: list[str] = []
            if args.nodes > 1:
                if shutil.which("redis-server") is None:
                    raise SystemExit("--nodes 2 needs redis-server on PATH (a private one is "
                                     "started)")
                database = stack.enter_context(
                    private_database(args.postgres_url, "soak", migrate=True))
                redis = PrivateRedis(tmp, preexec_fn=die_with_parent)
                redis.start()
                prefix = f"hb-soak-{secrets.token_hex(4)}:"
                store += ["--database-url", database]
                serve_extra = ["--database-url", database, "--broker-url", redis.url,
                               "--redis-prefix", prefix]
            tokens = {
                "admin": cli(store, "token", "create", "--role", "admin", "--name", "soak"),
                "curator": cli(store, "token", "create", "--role", "curator", "--market",
                               MARKET, "--name", "soak curator"),
                "performer": cli(store, "token", "create", "--role", "performer",
                                 "--market", MARKET, "--name", "soak performer")}
            secret = cli(store, "inventory", "secret", "--market", MARKET)
            env = {**os.environ, "PYTHONUNBUFFERED": "1"}
            for n in range(args.nodes):
                port = free_port()
                node = Node(f"node{n}", port, [
                    sys.executable, "-m", "holobazaar", "serve", "--port", str(port),
                    "--data-dir", str(data), "--content", str(REPO), "--no-watch",
                    "--log-level", "warning", *serve_extra], tmp / f"node{n}.log", env)
                node.start()  # one after another (they migrate / take leases in turn)
                nodes.append(node)
            setup = (f"PostgreSQL + private Redis on port {redis.port}" if redis
                     else "SQLite, in-process broker")
            print(f"soak: {args.minutes:g} min, {len(nodes)} node(s) ({setup}), "
                  f"{args.visitors} visitors (mean stay {args.stay:g} s) + {args.watchers} "
                  f"watchers; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs",
                  flush=True)
            out = asyncio.run(run_day(args, nodes, tokens, secret, redis))
        finally:
            for node in nodes:
                stop(node.process, 30)
            if redis is not None:
                redis.stop()
        out["logs"] = log_problems([n.log for n in nodes])
        audit, problems = audit_check(store, out.pop("_acked"))  # before the database goes
        out.update(audit)
        out["failures"] += problems
    report(out)
    print(f"server logs: {out['logs']}")
    if args.out:
        args.out.write_text(json.dumps(out, indent=2))
    if args.keep:
        print(f"kept {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(1 if out["failures"] else 0)


if __name__ == "__main__":
    main()
