"""Fan-out benchmark: N real WebSocket clients on one display channel of a live server,
R price changes per second entering through the real path (HTTP API -> inventory ->
compositor -> hub), for T seconds. Prints delivered messages/s and latency percentiles
(change sent -> patch received), plus the CPU time of server and load generator.

    python bench/fanout.py --clients 500 --rate 10 --seconds 10
    python bench/fanout.py --url http://127.0.0.1:8000 ...   # against a running server

A benchmark, not a test: it prints figures and stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import websockets

REPO = Path(__file__).resolve().parents[1]
MARKET, DISPLAY, SKU = "greenhaven", "zonneveld-greens", "TOM-BRANDY"
CHANNEL = f"market/{MARKET}/display/{DISPLAY}"
PRICE_PATH = f"/items/{SKU}/price"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, data_dir: Path) -> subprocess.Popen:
    holobazaar = shutil.which("holobazaar", path=str(Path(sys.executable).parent)) or "holobazaar"
    return subprocess.Popen(
        [holobazaar, "serve", "--port", str(port), "--data-dir", str(data_dir),
         "--content", str(REPO), "--no-watch", "--log-level", "warning"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


def wait_ready(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise SystemExit(f"server at {url} did not become ready")


def proc_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def proc_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


async def client_task(ws_url: str, sent: dict[str, float], latencies: list[float],
                      counts: list[int], ready: asyncio.Event, ready_count: list[int],
                      total: int) -> None:
    async with websockets.connect(ws_url, max_size=None, open_timeout=60,
                                  ping_interval=None) as ws:
        await ws.recv()  # welcome
        await ws.send(json.dumps({"type": "hello", "protocol": 1,
                                  "subscribe": [{"channel": CHANNEL}]}))
        await ws.recv()  # snapshot
        ready_count[0] += 1
        if ready_count[0] == total:
            ready.set()
        async for raw in ws:
            now = time.perf_counter()
            message = json.loads(raw)
            if message["type"] != "patch":
                continue
            counts[0] += 1
            for op in message["ops"]:
                if op["path"] == PRICE_PATH and op["value"] in sent:
                    latencies.append(now - sent[op["value"]])


def bench_token(data_dir: Path) -> str:
    """A curator token for the bench's own server (changes need one since accounts)."""
    holobazaar = shutil.which("holobazaar", path=str(Path(sys.executable).parent)) or "holobazaar"
    result = subprocess.run(
        [holobazaar, "token", "create", "--role", "curator", "--market", MARKET,
         "--name", "fanout bench", "--data-dir", str(data_dir)],
        capture_output=True, text=True, check=True)
    return result.stdout.strip().splitlines()[-1]


async def run(args: argparse.Namespace, url: str) -> dict:
    ws_url = url.replace("http", "ws", 1) + "/ws"
    sent: dict[str, float] = {}
    latencies: list[float] = []
    counts = [0]
    ready, ready_count = asyncio.Event(), [0]
    connect_start = time.perf_counter()
    tasks = []
    for _ in range(args.clients):
        tasks.append(asyncio.create_task(
            client_task(ws_url, sent, latencies, counts, ready, ready_count, args.clients)))
        if len(tasks) % 200 == 0:
            await asyncio.sleep(0.05)  # do not exceed the listen backlog
    await asyncio.wait_for(ready.wait(), 120)
    connect_time = time.perf_counter() - connect_start

    changes = int(args.rate * args.seconds)
    interval = 1.0 / args.rate
    headers = {"Authorization": f"Bearer {args.token}"}
    async with httpx.AsyncClient(base_url=url, timeout=10, headers=headers) as http:
        start = time.perf_counter()
        for seq in range(changes):
            target = start + seq * interval
            delay = target - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            price = f"{1000 + seq / 100:.2f}"
            sent[price] = time.perf_counter()
            response = await http.patch(f"/api/v1/markets/{MARKET}/items/{SKU}",
                                        json={"price": price})
            response.raise_for_status()
        send_done = time.perf_counter()
        expected = changes * args.clients
        deadline = time.perf_counter() + args.drain
        while len(latencies) < expected and time.perf_counter() < deadline:
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - start
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {"changes": changes, "expected": expected, "delivered": len(latencies),
            "patches": counts[0], "elapsed": elapsed, "send_time": send_done - start,
            "connect_time": connect_time, "latencies": latencies}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--rate", type=float, default=10.0, help="changes per second")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--drain", type=float, default=10.0,
                        help="seconds to wait for late deliveries after the last change")
    parser.add_argument("--url", help="benchmark a running server instead of starting one")
    parser.add_argument("--token", default=os.environ.get("HOLOBAZAAR_TOKEN"),
                        help="curator token for --url (default: $HOLOBAZAAR_TOKEN)")
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, args.clients * 2 + 256)),
                                                hard))

    server = None
    tmp = None
    if args.url:
        url = args.url.rstrip("/")
        if not args.token:
            raise SystemExit("--url needs --token (or HOLOBAZAAR_TOKEN): changes need a curator")
    else:
        tmp = tempfile.mkdtemp(prefix="holobazaar-bench-")
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = start_server(port, Path(tmp))
        wait_ready(url)
        args.token = bench_token(Path(tmp))
    try:
        wait_ready(url)
        server_cpu0 = proc_cpu_seconds(server.pid) if server else 0.0
        own_cpu0 = time.process_time()
        result = asyncio.run(run(args, url))
        own_cpu = time.process_time() - own_cpu0
        server_cpu = proc_cpu_seconds(server.pid) - server_cpu0 if server else float("nan")
        server_rss = proc_rss_mb(server.pid) if server else float("nan")
    finally:
        if server:
            server.terminate()
            server.wait(10)
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)

    lat_ms = [x * 1000 for x in result["latencies"]]
    summary = {
        "clients": args.clients, "rate": args.rate, "seconds": args.seconds,
        "changes": result["changes"], "expected": result["expected"],
        "delivered": result["delivered"],
        "delivered_per_s": round(result["delivered"] / result["elapsed"], 1),
        "p50_ms": round(statistics.median(lat_ms), 2) if lat_ms else None,
        "p99_ms": round(percentile(lat_ms, 99), 2) if lat_ms else None,
        "max_ms": round(max(lat_ms), 2) if lat_ms else None,
        "connect_s": round(result["connect_time"], 2),
        "server_cpu_s": round(server_cpu, 2), "server_rss_mb": round(server_rss, 1),
        "loadgen_cpu_s": round(own_cpu, 2), "elapsed_s": round(result["elapsed"], 2),
    }
    if args.json:
        print(json.dumps(summary))
        return
    print(f"holobazaar fan-out: {args.clients} clients x {args.rate:g} changes/s "
          f"for {args.seconds:g} s")
    print(f"  delivered     {summary['delivered']}/{summary['expected']} "
          f"({summary['delivered_per_s']}/s)")
    print(f"  latency       p50 {summary['p50_ms']} ms   p99 {summary['p99_ms']} ms   "
          f"max {summary['max_ms']} ms")
    print(f"  connect       {summary['connect_s']} s for all clients to get their snapshot")
    print(f"  server        {summary['server_cpu_s']} s CPU, {summary['server_rss_mb']} MB RSS")
    print(f"  load gen      {summary['loadgen_cpu_s']} s CPU over {summary['elapsed_s']} s")


if __name__ == "__main__":
    main()
