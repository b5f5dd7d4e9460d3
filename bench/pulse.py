"""Pulse benchmark: many devices reacting, bursty, and what aggregation costs.

Part 1 (in-process, the default 10,000 devices reacting on average once every 10 s, i.e.
about 1,000 reactions/s with bursts of 3x): the real PulseService (per-device limiter,
salted hashing, sliding windows, k-anonymous view published through a real Hub every
second, raw events and closed minutes written to SQLite every 5 s). Prints the CPU share of
one core spent in pulse (accepting + publishing + flushing), resident memory over time,
and the pulse channel's publish rate as its subscribers see it.

Part 2 (--clients N, default 200): a real server process and N real WebSocket clients,
each joined to a display channel and reacting with its own device ids, at --protocol-rate
reactions/s in total; prints the server's CPU share and what it accepted.

    python bench/pulse.py                         # 90 s in-process + 20 s over the protocol
    python bench/pulse.py --seconds 600           # the 10-minute run
    python bench/pulse.py --clients 0             # in-process part only

A benchmark, not a test: it prints figures and stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import resource
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MARKET = "greenhaven"
KINDS = ("love", "wow", "hungry", "learn")
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE / 1e6


class FrameClock:
    """A hub subscriber recording when pulse frames go out."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def send_frame(self, frame: str) -> None:
        self.times.append(time.monotonic())


async def in_process(devices: int, seconds: float, mean_interval: float) -> None:
    from starlette.concurrency import run_in_threadpool

    from holobazaar import db
    from holobazaar.pulse import service as pulse_service
    from holobazaar.pulse.service import PulseService, PulseSettings, pulse_channel
    from holobazaar.scenes.service import SceneService
    from holobazaar.stream.broker import InProcessBroker
    from holobazaar.stream.hub import Hub
    from holobazaar.stream.protocol import Reaction

    tmp = Path(tempfile.mkdtemp(prefix="pulse-bench-"))
    url = f"sqlite:///{tmp / 'bench.db'}"
    await run_in_threadpool(db.upgrade, url)
    engine = db.make_engine(url)
    hub = Hub(InProcessBroker(1000, 600.0))
    await hub.start()
    scenes = SceneService(REPO, hub, engine)
    await scenes.start()
    service = PulseService(engine, hub, scenes, PulseSettings())
    busy = {"cpu": 0.0}

    # Count the CPU of pulse's own work: accepting (below), publishing and flushing.
    publish, flush = service.publish, service.flush

    async def timed_publish() -> None:
        t = time.thread_time()
        await publish()
        busy["cpu"] += time.thread_time() - t

    async def timed_flush(everything: bool = False) -> None:
        t = time.thread_time()
        await flush(everything)
        busy["cpu"] += time.thread_time() - t

    write_cpu = {"cpu": 0.0}
    real_add_minutes, real_add_events = pulse_service.store.add_minutes, \
        pulse_service.store.add_events

    def timed(fn):
        def wrapper(*args, **kwargs):
            t = time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                write_cpu["cpu"] += time.thread_time() - t
        return wrapper

    pulse_service.store.add_minutes = timed(real_add_minutes)
    pulse_service.store.add_events = timed(real_add_events)
    service.publish, service.flush = timed_publish, timed_flush  # type: ignore[method-assign]
    await service.start()
    clock = FrameClock()
    await hub.subscribe(pulse_channel(MARKET), clock)

    content = scenes.market(MARKET)
    assert content is not None
    displays = sorted(content.displays)
    ids = [secrets.token_urlsafe(16) for _ in range(devices)]
    # Each device prefers a few displays (people linger at stalls they like).
    favourite = [random.sample(displays, 3) for _ in range(devices)]
    messages = [[Reaction(type="reaction", market=MARKET, display=d, kind=random.choice(KINDS),
                          device=ids[i]) for d in favourite[i]] for i in range(devices)]
    base_rate = devices / mean_interval
    print(f"in-process: {devices} devices, mean {base_rate:.0f} reactions/s (bursts 3x), "
          f"{seconds:.0f} s")
    started = time.monotonic()
    cpu0 = time.process_time()
    rusage0 = resource.getrusage(resource.RUSAGE_SELF)
    accepted = refused = 0
    tick = 0.01
    def sizes() -> tuple[int, int]:
        """Entries pulse itself holds (slots, window devices, day devices, open minutes,
        device buckets, unflushed events), and the hub's resume history for the channel."""
        held = len(service.devices.buckets) + len(service._events)
        for pulse in service.markets.values():
            held += sum(len(m.devices) for m in pulse.minutes.values())
            for scope in pulse.scopes.values():
                held += len(scope.slots) + len(scope.day_devices)
                held += sum(len(seen) for seen in scope.seen.values())
        log = hub.broker._logs.get(pulse_channel(MARKET), ())  # type: ignore[attr-defined]
        return held, len(log)

    samples: list[tuple[float, float, tuple[int, int]]] = [(0.0, rss_mb(), sizes())]
    next_sample = 10.0
    debt, last = 0.0, 0.0
    while (elapsed := time.monotonic() - started) < seconds:
        # Bursty: every 30 s a 5-second rush at 3x, quieter (0.6x) otherwise.
        factor = 3.0 if elapsed % 30 < 5 else 0.6
        debt += base_rate * factor * (elapsed - last)
        last = elapsed
        n, debt = int(debt), debt - int(debt)
        t = time.thread_time()
        for _ in range(n):
            i = random.randrange(devices)
            if service.accept(random.choice(messages[i])) is None:
                accepted += 1
            else:
                refused += 1
        busy["cpu"] += time.thread_time() - t
        if elapsed >= next_sample:
            samples.append((elapsed, rss_mb(), sizes()))
            next_sample += 10.0
        await asyncio.sleep(max(0.0, started + (int(elapsed / tick) + 1) * tick
                                - time.monotonic()))
    wall = time.monotonic() - started
    log = hub.broker._logs.get(pulse_channel(MARKET), ())  # type: ignore[attr-defined]
    if log:
        frames = [len(e.frame or "") for e in log]
        ops = [len(e.data) for e in log]
        print(f"  pulse patches: {sum(ops) / len(ops):.0f} ops, "
              f"{sum(frames) / len(frames) / 1000:.1f} kB per frame on average")
    cpu_total = time.process_time() - cpu0
    rusage1 = resource.getrusage(resource.RUSAGE_SELF)
    await service.close()
    await hub.close()
    engine.dispose()
    shutil.rmtree(tmp, ignore_errors=True)

    pulse_cpu = busy["cpu"] + write_cpu["cpu"]
    gaps = [b - a for a, b in zip(clock.times, clock.times[1:], strict=False)]
    per_second: dict[int, int] = {}
    for t in clock.times:
        per_second[int(t - started)] = per_second.get(int(t - started), 0) + 1
    print(f"  reactions accepted {accepted} ({accepted / wall:.0f}/s), refused {refused} "
          f"(per-device limit)")
    print(f"  pulse CPU: {pulse_cpu:.2f} s in {wall:.0f} s = {100 * pulse_cpu / wall:.1f}% of "
          f"one core (accept + publish + flush on the loop {busy['cpu']:.2f} s, DB writes "
          f"in the thread pool {write_cpu['cpu']:.2f} s)")
    used = (rusage1.ru_utime - rusage0.ru_utime) + (rusage1.ru_stime - rusage0.ru_stime)
    print(f"  whole process incl. load generation: {100 * cpu_total / wall:.1f}% of one core "
          f"(user+sys {used:.1f} s)")
    print("  over time (s: RSS MB / entries held by pulse / hub history entries of the "
          "pulse channel, bounded by history_size):")
    print("    " + ", ".join(f"{t:.0f}: {m:.0f}/{h}/{n}" for t, m, (h, n) in samples))
    if len(samples) > 3:
        settled = [m for t, m, _ in samples if t >= min(60.0, seconds / 2)]
        print(f"  RSS after warm-up: min {min(settled):.1f} MB, max {max(settled):.1f} MB, "
              f"end - first {settled[-1] - settled[0]:+.1f} MB")
    print(f"  pulse channel: {len(clock.times)} frames, max {max(per_second.values(), default=0)}"
          f" in any second, shortest gap {min(gaps, default=0):.3f} s")
    pulse = service.markets[MARKET]
    scope = pulse.scopes[("market", MARKET)]
    print(f"  sizes: scopes {len(pulse.scopes)}, market slots {len(scope.slots)}, devices in "
          f"1m/15m/day {len(scope.seen['1m'])}/{len(scope.seen['15m'])}/"
          f"{len(scope.day_devices)}, device buckets {len(service.devices.buckets)}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def over_protocol(clients: int, rate: float, seconds: float) -> None:
    import httpx
    import websockets

    port = free_port()
    data = Path(tempfile.mkdtemp(prefix="pulse-bench-srv-"))
    holobazaar = shutil.which("holobazaar", path=str(Path(sys.executable).parent)) or "holobazaar"
    server = subprocess.Popen(
        [holobazaar, "serve", "--port", str(port), "--data-dir", str(data), "--content",
         str(REPO), "--no-watch", "--log-level", "warning"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        env={**os.environ, "HOLOBAZAAR_PULSE_RATE": "5", "HOLOBAZAAR_PULSE_BURST": "10"})
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise SystemExit("server did not start")
            await asyncio.sleep(0.1)
        displays = sorted(httpx.get(f"{base}/api/v1/markets/{MARKET}").json()
                          .get("displays", {}) or ["zonneveld-greens"])
        sockets = []
        for i in range(clients):
            ws = await websockets.connect(f"ws://127.0.0.1:{port}/ws", max_size=None)
            await ws.recv()
            display = displays[i % len(displays)]
            await ws.send(json.dumps({"type": "hello", "protocol": 1, "subscribe": [
                {"channel": f"market/{MARKET}/display/{display}"}]}))
            await ws.recv()
            sockets.append((ws, display))

        async def drain(ws) -> None:
            with contextlib.suppress(websockets.ConnectionClosed):
                async for _ in ws:
                    pass

        drains = [asyncio.create_task(drain(ws)) for ws, _ in sockets]
        per_client = rate / clients
        cpu0, started = proc_cpu(server.pid), time.monotonic()

        async def tapper(ws, display) -> None:
            device = secrets.token_urlsafe(16)
            while time.monotonic() - started < seconds:
                await asyncio.sleep(random.expovariate(per_client))
                await ws.send(json.dumps({"type": "reaction", "market": MARKET,
                                          "display": display, "kind": random.choice(KINDS),
                                          "device": device}))

        await asyncio.gather(*(tapper(ws, d) for ws, d in sockets))
        wall = time.monotonic() - started
        cpu = proc_cpu(server.pid) - cpu0
        metrics = httpx.get(f"{base}/metrics").text
        accepted = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                       if line.startswith('holobazaar_pulse_total{event="accepted_'))
        print(f"protocol: {clients} WebSocket clients, {rate:.0f} reactions/s for {wall:.0f} s:"
              f" server accepted {accepted:.0f} ({accepted / wall:.0f}/s), server CPU "
              f"{100 * cpu / wall:.1f}% of one core (parsing, validation, pulse, uvicorn)")
        for ws, _ in sockets:
            await ws.close()
        for task in drains:
            task.cancel()
    finally:
        server.terminate()
        server.wait(10)
        shutil.rmtree(data, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--mean-interval", type=float, default=10.0,
                        help="seconds between one device's reactions, on average")
    parser.add_argument("--seconds", type=float, default=90.0)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--protocol-rate", type=float, default=200.0)
    parser.add_argument("--protocol-seconds", type=float, default=20.0)
    args = parser.parse_args()
    random.seed(1)
    asyncio.run(in_process(args.devices, args.seconds, args.mean_interval))
    if args.clients:
        asyncio.run(over_protocol(args.clients, args.protocol_rate, args.protocol_seconds))


if __name__ == "__main__":
    main()
