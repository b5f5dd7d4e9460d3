"""Reconcile benchmark: a synthetic market with many SKUs and displays, served by a real
server process. Pushes one signed batch of changes and measures, per affected subscribed
client, when its patch arrives relative to the 2xx response; then times a full sweep and
reports the server's memory growth from loading the inventory.

    python bench/reconcile.py --skus 100000 --displays 2000 --changes 1000 --clients 200

Setup: --displays displays each bind 5 SKUs (seeded from market.yaml); the other SKUs are
pushed through the feed first in batches of 10,000 (with the circuit breaker relaxed for
this bulk load). A benchmark, not a test: it prints figures and stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import websockets

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "server"))
from holobazaar.inventory.feeds import sign  # noqa: E402

MARKET = "benchmarket"
PER_DISPLAY = 5


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_market(root: Path, displays: int) -> None:
    folder = root / "scenes" / MARKET
    (folder / "displays").mkdir(parents=True)
    lines = ["format: 1", "market: {id: benchmarket, name: Bench Market, currency: EUR}",
             "zones: [{id: hall, name: Hall}]", "items:"]
    for n in range(displays * PER_DISPLAY):
        lines.append(f'  - {{sku: S{n:06d}, name: Item {n}, price: "5.00", unit: each, '
                     f"stock: 10}}")
    (folder / "market.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    for d in range(displays):
        skus = [f"S{d * PER_DISPLAY + i:06d}" for i in range(PER_DISPLAY)]
        nodes = "\n".join(
            f'    - {{id: p{i}, kind: text, item: {sku}, text: "{{{{ item.name }}}} '
            f'{{{{ item.price }}}} {{{{ item.status_label }}}}"}}'
            for i, sku in enumerate(skus))
        (folder / "displays" / f"d{d:05d}.yaml").write_text(
            f"format: 1\ndisplay:\n  id: d{d:05d}\n  zone: hall\n  title: Stall {d}\n"
            f"  items: [{', '.join(skus)}]\n  nodes:\n{nodes}\n", encoding="utf-8")


def cli(data: Path, *args: str) -> str:
    return subprocess.run([sys.executable, "-m", "holobazaar", *args, "--data-dir", str(data)],
                          capture_output=True, text=True, check=True).stdout.strip()


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def signed(secret: str, events: list[dict]) -> tuple[bytes, dict]:
    body = json.dumps({"events": events}).encode()
    ts, key = str(int(time.time())), uuid.uuid4().hex
    return body, {"X-Holobazaar-Timestamp": ts, "Idempotency-Key": key,
                  "X-Holobazaar-Signature": sign(secret, ts, key, body)}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(url: str, ws_url: str, secret: str, displays: int, changes: int,
                  clients: int, seed: int) -> dict:
    rng = random.Random(seed)
    channels = [f"market/{MARKET}/display/d{d:05d}" for d in range(displays)]
    per_client = max(1, min(32, len(channels) // clients))
    sockets = []
    subscribed: dict[str, list[int]] = {}
    for c in range(clients):
        mine = channels[c * per_client:(c + 1) * per_client] or [channels[c % len(channels)]]
        ws = await websockets.connect(ws_url, max_size=None)
        await ws.recv()  # welcome
        await ws.send(json.dumps({"type": "hello", "protocol": 1,
                                  "subscribe": [{"channel": ch} for ch in mine]}))
        for _ in mine:
            await ws.recv()  # snapshots
        for ch in mine:
            subscribed.setdefault(ch, []).append(c)
        sockets.append(ws)
    bound = displays * PER_DISPLAY
    picked = rng.sample(range(bound), min(changes, bound))
    events = [{"sku": f"S{n:06d}", "price": f"{rng.randint(451, 549) / 100:.2f}",
               "source_version": int(time.time() * 1000)} for n in picked]
    affected = {f"market/{MARKET}/display/d{n // PER_DISPLAY:05d}" for n in picked}
    expected = {(c, ch) for ch in affected for c in subscribed.get(ch, [])}
    arrivals: dict[tuple[int, str], float] = {}

    async def reader(c: int, ws) -> None:
        while True:
            message = json.loads(await ws.recv())
            if message.get("type") == "patch":
                arrivals.setdefault((c, message["channel"]), time.perf_counter())

    readers = [asyncio.create_task(reader(c, ws)) for c, ws in enumerate(sockets)]
    body, headers = signed(secret, events)
    async with httpx.AsyncClient(timeout=60) as client:
        sent = time.perf_counter()
        response = await client.post(f"{url}/api/v1/inventory/{MARKET}/events", content=body,
                                     headers=headers)
        acked = time.perf_counter()
    response.raise_for_status()
    deadline = time.perf_counter() + 30
    while not expected <= set(arrivals) and time.perf_counter() < deadline:
        await asyncio.sleep(0.01)
    for task in readers:
        task.cancel()
    for ws in sockets:
        await ws.close()
    got = [arrivals[k] for k in expected if k in arrivals]
    from_ack = [(t - acked) * 1000 for t in got]
    from_sent = [(t - sent) * 1000 for t in got]
    return {"result": response.json(), "response_ms": (acked - sent) * 1000,
            "expected": len(expected), "received": len(got), "from_ack": from_ack,
            "from_sent": from_sent}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skus", type=int, default=100_000)
    parser.add_argument("--displays", type=int, default=2000)
    parser.add_argument("--changes", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="hb-bench-reconcile-"))
    write_market(tmp, args.displays)
    data = tmp / "var"
    secret = cli(data, "inventory", "secret", "--market", MARKET)
    token = cli(data, "token", "create", "--role", "admin", "--name", "bench").splitlines()[-1]
    port = free_port()
    env = {**os.environ, "HOLOBAZAAR_BREAKER_SHARE": "1", "HOLOBAZAAR_RECONCILE_INTERVAL":
           "3600", "HOLOBAZAAR_MAX_SUBSCRIPTIONS": "32"}
    started = time.perf_counter()
    server = subprocess.Popen(
        [sys.executable, "-m", "holobazaar", "serve", "--data-dir", str(data), "--content",
         str(tmp), "--port", str(port), "--no-watch", "--log-level", "warning"], env=env)
    url, ws_url = f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}/ws"
    try:
        while True:
            if server.poll() is not None:
                raise SystemExit("the server exited during start-up")
            try:
                health = httpx.get(f"{url}/healthz", timeout=1)
                # The port was free when picked; make sure it is our server answering.
                if health.status_code == 200 and MARKET in health.json().get("markets", []):
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        print(f"server up with {args.displays} displays, "
              f"{args.displays * PER_DISPLAY} seeded SKUs in {time.perf_counter() - started:.1f} s")
        rss_before = rss_kb(server.pid)
        bulk_started = time.perf_counter()
        extra = range(args.displays * PER_DISPLAY, args.skus)
        with httpx.Client(timeout=300) as client:
            for start in range(extra.start, extra.stop, 10_000):
                events = [{"sku": f"S{n:06d}", "name": f"Item {n}", "price": "5.00",
                           "unit": "each", "stock": 10}
                          for n in range(start, min(start + 10_000, extra.stop))]
                body, headers = signed(secret, events)
                client.post(f"{url}/api/v1/inventory/{MARKET}/events", content=body,
                            headers=headers).raise_for_status()
        bulk = time.perf_counter() - bulk_started
        rss_after = rss_kb(server.pid)
        print(f"bulk load: {len(extra)} SKUs pushed in {bulk:.1f} s; server RSS "
              f"{rss_before / 1024:.0f} -> {rss_after / 1024:.0f} MB")
        out = asyncio.run(measure(url, ws_url, secret, args.displays, args.changes,
                                  args.clients, args.seed))
        print(f"batch of {args.changes} changes: 2xx after {out['response_ms']:.0f} ms "
              f"(applied {out['result']['applied']}, held {out['result']['held']})")
        print(f"patches: {out['received']}/{out['expected']} (client, channel) pairs received")
        if out["from_ack"]:
            print("patch arrival relative to the 2xx response (ms, negative = before): "
                  f"p50 {statistics.median(out['from_ack']):.1f}  p99 "
                  f"{pct(out['from_ack'], 0.99):.1f}  max {max(out['from_ack']):.1f}")
            print(f"patch arrival from request sent (ms): p50 "
                  f"{statistics.median(out['from_sent']):.1f}  p99 "
                  f"{pct(out['from_sent'], 0.99):.1f}")
        headers = {"Authorization": f"Bearer {token}"}
        sweeps = []
        for _ in range(3):
            t0 = time.perf_counter()
            httpx.post(f"{url}/api/v1/reconcile/{MARKET}/sweep", headers=headers,
                       timeout=120).raise_for_status()
            sweeps.append(time.perf_counter() - t0)
        summary = httpx.get(f"{url}/api/v1/reconcile/{MARKET}/summary", headers=headers).json()
        print(f"full sweep of {args.displays} displays: "
              f"{', '.join(f'{s:.2f}' for s in sweeps)} s (server-side last "
              f"{summary['last_sweep_seconds']:.2f} s)")
        print(f"server RSS now {rss_kb(server.pid) / 1024:.0f} MB")
    finally:
        server.terminate()
        server.wait(30)


if __name__ == "__main__":
    main()
