"""Show sync benchmark: N simulated devices on loopback, each with its own round-trip
time (uniform 0..--max-rtt ms, half each way plus ±1 ms jitter) and clock skew (uniform
±--max-skew ms), connect to a zone channel of a live server, estimate their clock offset
with the protocol's ping/pong, and run the show's cues as they come. For each cue it
prints the spread of the instants the devices' clocks reach the cue's start (the true
instants, which only the simulation knows: what the protocol decides), of when their
timers really ran on this machine, and of their own server-time estimates (what the
performer console shows):

    python bench/showsync.py --devices 200 --cues 3
    python bench/showsync.py --url http://127.0.0.1:8000 --token hbt_...   # running server

A benchmark, not a test: it prints figures and stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from benchlib import wait_ready  # noqa: E402

from support.net import free_port  # noqa: E402
from support.processes import holobazaar_command  # noqa: E402
from support.syncsim import make_devices, spread  # noqa: E402

MARKET, SHOW, ZONE = "greenhaven", "harvest-collective", "orchard-row"
CHANNEL = f"market/{MARKET}/zone/{ZONE}"
BASE = f"/api/v1/shows/{MARKET}/{SHOW}"


def start_server(port: int, data_dir: Path, lead_ms: float) -> tuple[subprocess.Popen, str]:
    token = subprocess.run(
        [holobazaar_command(), "token", "create", "--role", "performer", "--market", MARKET,
         "--name", "showsync bench", "--data-dir", str(data_dir)],
        check=True, capture_output=True, text=True).stdout.strip()
    server = subprocess.Popen(
        [holobazaar_command(), "serve", "--port", str(port), "--data-dir", str(data_dir),
         "--content", str(REPO), "--no-watch", "--log-level", "warning"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        env={**os.environ, "HOLOBAZAAR_SHOW_LEAD_MS": str(lead_ms)})
    return server, token


async def run(url: str, token: str, devices_n: int, cues: int, max_rtt: float,
              max_skew: float, seed: int) -> None:
    ws_url = url.replace("http", "ws", 1) + "/ws"
    headers = {"Authorization": f"Bearer {token}"}
    devices = make_devices(ws_url, devices_n, seed=seed, max_rtt=max_rtt, max_skew=max_skew)
    started = time.perf_counter()
    # Connect in batches: a burst of hundreds of handshakes is not what is measured.
    for i in range(0, len(devices), 50):
        await asyncio.gather(*(d.connect(CHANNEL) for d in devices[i:i + 50]))
    await asyncio.gather(*(d.sync_clock() for d in devices))
    errors = [abs(d.offset_ms + d.skew_ms) for d in devices]  # true offset is -skew
    print(f"{devices_n} devices connected and synced in {time.perf_counter() - started:.1f} s"
          f" (RTT 0-{max_rtt:.0f} ms, skew ±{max_skew:.0f} ms)")
    print(f"clock offset error: median {statistics.median(errors):.2f} ms, "
          f"max {max(errors):.2f} ms")
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=10) as http:
        rows = []
        for n in range(cues):
            # Each GO starts from a stopped show, so no earlier sequence is still firing.
            (await http.post(f"{BASE}/stop")).raise_for_status()
            number = ("1", "6", "7")[n % 3]
            (await http.post(f"{BASE}/standby", json={"number": number})).raise_for_status()
            await asyncio.sleep(0.2)
            before = [len(d.executions) for d in devices]
            response = await http.post(f"{BASE}/go")
            if response.status_code != 200:
                raise SystemExit(f"GO failed: {response.status_code} {response.text}")
            async with asyncio.timeout(10):
                while any(len(d.executions) <= b for d, b in zip(devices, before, strict=True)):
                    await asyncio.sleep(0.01)
            await asyncio.gather(*(d.report(CHANNEL) for d in devices))
            await asyncio.sleep(0.3)
            state = (await http.get(BASE)).json()
            runs = [d.executions[before[i]] for i, d in enumerate(devices)]
            planned = [r.planned_ms for r in runs]
            fired = [r.true_ms for r in runs]
            estimated = [r.estimated_ms for r in runs]
            late = sum(1 for r in runs if r.early_ms <= 0)
            rows.append((number, spread(planned), max(planned) - min(planned), spread(fired),
                         spread(estimated), late, state["sync"]))
            await asyncio.sleep(0.2)
        (await http.post(f"{BASE}/stop")).raise_for_status()
    print("planned: real instants the devices' clocks reach start_time - offset (the protocol);")
    print("fired: when their timers ran here (adds this machine's CPU scheduling);")
    print("reported: their own server-time estimates, as the console shows them")
    print("cue  planned p99  planned max-min  fired p99  reported p99  late  "
          "console (devices, p99, max-min)")
    for n, p99, full, fired, est, late, sync in rows:
        print(f"{n:>3}  {p99:>8.2f} ms  {full:>12.2f} ms  {fired:>6.2f} ms  {est:>9.2f} ms  "
              f"{late:>4}  ({sync['devices']}, {sync['p99_spread_ms']} ms, "
              f"{sync['spread_ms']} ms)")
    worst = max(r[1] for r in rows)
    print(f"worst planned p99 spread: {worst:.2f} ms (target <= 20 ms): "
          f"{'OK' if worst <= 20 else 'MISSED'}; load average now "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    await asyncio.gather(*(d.close() for d in devices))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--cues", type=int, default=3, help="GOs to measure")
    parser.add_argument("--max-rtt", type=float, default=200.0)
    parser.add_argument("--max-skew", type=float, default=2000.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--lead-ms", type=float, default=150.0,
                        help="the started server's HOLOBAZAAR_SHOW_LEAD_MS")
    parser.add_argument("--url", help="use a running server instead of starting one")
    parser.add_argument("--token", default=os.environ.get("HOLOBAZAAR_TOKEN"),
                        help="performer token for --url [$HOLOBAZAAR_TOKEN]")
    args = parser.parse_args()
    server = None
    with tempfile.TemporaryDirectory() as tmp:
        if args.url:
            if not args.token:
                raise SystemExit("--url needs --token (a performer API token)")
            url, token = args.url.rstrip("/"), args.token
        else:
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            server, token = start_server(port, Path(tmp), args.lead_ms)
            wait_ready(url)
        try:
            asyncio.run(run(url, token, args.devices, args.cues, args.max_rtt, args.max_skew,
                            args.seed))
        finally:
            if server is not None:
                server.terminate()
                server.wait(10)


if __name__ == "__main__":
    main()
