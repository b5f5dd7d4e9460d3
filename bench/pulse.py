"""Pulse benchmark: many devices reacting, bursty, and what aggregation costs.

Main run (default): 10,000 real WebSocket clients (one device each, spread over the
market's displays) connected to a real `holobazaar serve` process, from a separate
load-generator process (`--generators N` splits them), reacting on average once every
10 s: about 1,000 reactions/s, with a 5-second rush at 3x every 30 s (0.6x otherwise).
Prints the CPU of pulse's own work (accept, aggregate, publish, flush, database writes:
the server's `holobazaar_pulse_cpu_seconds_total`) as a share of one core, the whole server
process's CPU, the load generators' CPU, the server's RSS over the run (no growth expected
after warm-up) and the pulse channel's frame rate as a client sees it (<= 1/s).

`--nodes 2`: two nodes on a private PostgreSQL database and Redis prefix (clients split
between them; one aggregates). `--in-process`: drive PulseService directly (no sockets),
with `--tracemalloc` to see where Python memory grows after warm-up.

    python bench/pulse.py                      # 60 s, 10,000 clients, one node
    python bench/pulse.py --seconds 600        # the 10-minute run
    python bench/pulse.py --nodes 2 --generators 2
    python bench/pulse.py --in-process --tracemalloc --seconds 240

The RLIMIT_NOFILE soft limit is raised to the hard limit (10,000 sockets on each side).
A benchmark, not a test: it prints figures and stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import itertools
import json
import os
import random
import resource
import secrets
import shutil
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


def frame_rate(times: list[float]) -> str:
    """How often frames came: the rate limit is on publishing (at least 1 s between two),
    so what a client sees can be closer by a few ms of delivery jitter; over 10 s it
    cannot exceed the rate."""
    gaps = [b - a for a, b in itertools.pairwise(times)]
    in_ten = max((bisect.bisect_left(times, t + 10.0) - i for i, t in enumerate(times)),
                 default=0)
    mean = sum(gaps) / len(gaps) if gaps else 0.0
    return (f"{len(times)} frames, gap mean {mean:.3f} s, shortest {min(gaps, default=0):.3f}"
            f" s, at most {in_ten} in any 10 s")


class FrameClock:
    """A hub subscriber recording when pulse frames go out."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def send_frame(self, frame: str) -> None:
        self.times.append(time.monotonic())


def print_pulse_cpu(parts: dict[str, float], wall: float) -> None:
    total = sum(parts.values())
    print(f"  pulse CPU: {total:.2f} s in {wall:.0f} s = {100 * total / wall:.1f}% of one core ("
          + ", ".join(f"{k} {v:.2f} s" for k, v in sorted(parts.items())) + ")")


def traced_mb() -> float:
    import tracemalloc

    return tracemalloc.get_traced_memory()[0] / 1e6 if tracemalloc.is_tracing() else 0.0


def malloc_arena_mb() -> tuple[float, float]:
    """glibc's view (mallinfo2): bytes in use by malloc and bytes it holds from the OS."""
    import ctypes

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
            "uordblks", "fordblks", "keepcost")]

    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = MallInfo2
    except (OSError, AttributeError):
        return 0.0, 0.0
    info = libc.mallinfo2()
    return info.uordblks / 1e6, (info.arena + info.hblkhd) / 1e6


async def in_process(devices: int, seconds: float, mean_interval: float,
                     trace: bool = False) -> None:
    from starlette.concurrency import run_in_threadpool

    from holobazaar import db
    from holobazaar.channels import pulse_channel
    from holobazaar.content import load_content
    from holobazaar.inventory.service import InventoryItems
    from holobazaar.pulse.service import PulseService, PulseSettings
    from holobazaar.scenes.service import SceneService
    from holobazaar.stream.broker_memory import InProcessBroker
    from holobazaar.stream.hub import Hub
    from holobazaar.stream.protocol import Reaction

    tmp = Path(tempfile.mkdtemp(prefix="pulse-bench-"))
    url = f"sqlite:///{tmp / 'bench.db'}"
    await run_in_threadpool(db.upgrade, url)
    engine = db.make_engine(url)
    hub = Hub(InProcessBroker(1000, 600.0))
    await hub.start()
    scenes = SceneService(REPO, hub, engine, load=load_content,
                          item_store=InventoryItems(engine))
    await scenes.start()
    service = PulseService(engine, hub, scenes, PulseSettings())
    # Pulse's own CPU: the service's counters (accept, publish, flush, write), as in /metrics.
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
    pulse0 = dict(service.cpu)
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

    import tracemalloc

    if trace:
        tracemalloc.start(1)
    warm = min(60.0, seconds / 3)
    first_snapshot = None
    samples: list[tuple[float, float, tuple[int, int]]] = [(0.0, rss_mb(), sizes())]
    memory: list[tuple[float, float, float, float]] = []  # t, traced, malloc used, held
    next_sample = 10.0
    debt, last = 0.0, 0.0
    while (elapsed := time.monotonic() - started) < seconds:
        # Bursty: every 30 s a 5-second rush at 3x, quieter (0.6x) otherwise.
        factor = 3.0 if elapsed % 30 < 5 else 0.6
        debt += base_rate * factor * (elapsed - last)
        last = elapsed
        n, debt = int(debt), debt - int(debt)
        for _ in range(n):
            i = random.randrange(devices)
            if service.accept(random.choice(messages[i])) is None:
                accepted += 1
            else:
                refused += 1
        if elapsed >= next_sample:
            samples.append((elapsed, rss_mb(), sizes()))
            memory.append((elapsed, traced_mb(), *malloc_arena_mb()))
            next_sample += 10.0
        if trace and first_snapshot is None and elapsed >= warm:
            first_snapshot = tracemalloc.take_snapshot()
        await asyncio.sleep(max(0.0, started + (int(elapsed / tick) + 1) * tick
                                - time.monotonic()))
    wall = time.monotonic() - started
    if first_snapshot is not None:
        growth = tracemalloc.take_snapshot().compare_to(first_snapshot, "lineno")
        print(f"  tracemalloc: Python objects grew by {sum(s.size_diff for s in growth) / 1e6:+.2f}"
              f" MB from {warm:.0f} s to the end; largest changes:")
        for stat in growth[:12]:
            print(f"    {stat.size_diff / 1e3:+9.1f} kB {stat.count_diff:+7d} blocks  "
                  f"{stat.traceback[0]}")
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

    parts = {k: v - pulse0.get(k, 0.0) for k, v in service.cpu.items()}
    print(f"  reactions accepted {accepted} ({accepted / wall:.0f}/s), refused {refused} "
          f"(per-device limit)")
    print_pulse_cpu(parts, wall)
    used = (rusage1.ru_utime - rusage0.ru_utime) + (rusage1.ru_stime - rusage0.ru_stime)
    print(f"  whole process incl. load generation: {100 * cpu_total / wall:.1f}% of one core "
          f"(user+sys {used:.1f} s)")
    print("  over time (s: RSS MB / entries held by pulse / hub history entries of the "
          "pulse channel, bounded by history_size):")
    print("    " + ", ".join(f"{t:.0f}: {m:.0f}/{h}/{n}" for t, m, (h, n) in samples))
    print("  memory over time (s: traced Python MB / malloc in use MB / malloc held MB): "
          + ", ".join(f"{t:.0f}: {a:.1f}/{b:.1f}/{c:.1f}" for t, a, b, c in memory))
    if len(samples) > 3:
        settled = [m for t, m, _ in samples if t >= min(60.0, seconds / 2)]
        print(f"  RSS after warm-up: min {min(settled):.1f} MB, max {max(settled):.1f} MB, "
              f"end - first {settled[-1] - settled[0]:+.1f} MB")
    print(f"  pulse channel (published): {frame_rate(clock.times)}")
    pulse = service.markets[MARKET]
    scope = pulse.scopes[("market", MARKET)]
    print(f"  sizes: scopes {len(pulse.scopes)}, market slots {len(scope.slots)}, devices in "
          f"1m/15m/day {len(scope.seen['1m'])}/{len(scope.seen['15m'])}/"
          f"{len(scope.day_devices)}, device buckets {len(service.devices.buckets)}")


# ---- the main run: real WebSocket clients from separate load-generator processes -------

def raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def bursty_rate(elapsed: float, mean: float) -> float:
    """Every 30 s a 5-second rush at 3x the mean, 0.6x otherwise (the mean stays `mean`)."""
    return mean * (3.0 if elapsed % 30 < 5 else 0.6)


async def generate(urls: list[str], clients: int, displays: list[str], seconds: float,
                   rate: float) -> None:
    """A load generator (a process of its own): `clients` WebSocket clients (spread over
    the nodes' `urls`), each one device joined to one display, reacting `rate`/s in total
    (bursty). Prints "ready" when connected, starts on a "go" line on stdin, prints its
    figures as JSON at the end."""
    import websockets

    raise_nofile()
    gate = asyncio.Semaphore(100)
    errors: dict[str, int] = {}
    frames = [0]

    async def connect(i: int):
        display = displays[i % len(displays)]
        async with gate:
            # No permessage-deflate: 10,000 zlib contexts would dominate the server's memory.
            ws = await websockets.connect(urls[i % len(urls)], max_size=None,
                                          compression=None, open_timeout=120,
                                          ping_interval=None)
            await ws.recv()  # welcome
            await ws.send(json.dumps({"type": "hello", "protocol": 1, "subscribe": [
                {"channel": f"market/{MARKET}/display/{display}"}]}))
            await ws.recv()  # snapshot
        return ws, display, secrets.token_urlsafe(16)

    async def drain(ws) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for raw in ws:
                frames[0] += 1
                if '"error"' in raw:
                    code = json.loads(raw).get("code", "?")
                    errors[code] = errors.get(code, 0) + 1

    conns = await asyncio.gather(*(connect(i) for i in range(clients)))
    readers = [asyncio.create_task(drain(ws)) for ws, _, _ in conns]
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    usage0, started = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
    sent, debt, last, tick = 0, 0.0, 0.0, 0.01
    while (elapsed := time.monotonic() - started) < seconds:
        debt += bursty_rate(elapsed, rate) * (elapsed - last)
        last = elapsed
        n, debt = int(debt), debt - int(debt)
        for _ in range(n):
            ws, display, device = random.choice(conns)
            await ws.send(json.dumps({"type": "reaction", "market": MARKET, "display": display,
                                      "kind": random.choice(KINDS), "device": device}))
        sent += n
        await asyncio.sleep(max(0.0, started + (int(elapsed / tick) + 1) * tick
                                - time.monotonic()))
    wall = time.monotonic() - started
    usage1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
    await asyncio.sleep(1.0)  # the last answers
    closed = sum(ws.close_code is not None for ws, _, _ in conns)
    print(json.dumps({"sent": sent, "wall": wall, "cpu": cpu, "errors": errors,
                      "frames": frames[0], "closed_by_server": closed}), flush=True)
    for task in readers:
        task.cancel()
    for ws, _, _ in conns:
        with contextlib.suppress(Exception):
            await ws.close()


def pulse_metrics(url: str) -> tuple[dict[str, float], dict[str, float], bool]:
    """(pulse CPU seconds by part, pulse event counters, aggregating) from /metrics."""
    import httpx

    cpu: dict[str, float] = {}
    events: dict[str, float] = {}
    leading = False
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith("holobazaar_pulse_cpu_seconds_total{"):
            cpu[line.split('"')[1]] = float(line.rsplit(" ", 1)[1])
        elif line.startswith("holobazaar_pulse_total{"):
            events[line.split('"')[1]] = float(line.rsplit(" ", 1)[1])
        elif line.startswith("holobazaar_pulse_aggregating "):
            leading = float(line.rsplit(" ", 1)[1]) == 1
    return cpu, events, leading


@contextlib.contextmanager
def servers(count: int, redis_url: str | None, postgres_url: str | None):
    """`count` server processes: one on SQLite with the in-process broker, or several on a
    private PostgreSQL database and Redis prefix (bench/scaleout.py's helpers)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from benchlib import wait_ready
    from scaleout import start_nodes

    from support.databases import delete_prefix, private_database
    from support.net import free_port
    from support.processes import holobazaar_command

    tmp = Path(tempfile.mkdtemp(prefix="pulse-bench-srv-"))
    started: list[tuple[subprocess.Popen, str]] = []
    try:
        if count == 1:
            port = free_port()
            with (tmp / "server.log").open("wb") as out:
                process = subprocess.Popen(
                    [holobazaar_command(), "serve", "--port", str(port), "--data-dir",
                     str(tmp / "data"), "--content", str(REPO), "--no-watch",
                     "--log-level", "warning"], stdout=out, stderr=subprocess.STDOUT)
            started = [(process, f"http://127.0.0.1:{port}")]
            wait_ready(started[0][1], 60)
            yield started
            return
        if not (redis_url and postgres_url):
            raise SystemExit("--nodes 2 needs --redis-url and --postgres-url (or "
                             "HOLOBAZAAR_TEST_REDIS_URL / HOLOBAZAAR_TEST_POSTGRES_URL)")
        prefix = f"hbbench:pulse:{secrets.token_hex(4)}:"
        with private_database(postgres_url, "bench", migrate=True) as database_url:
            try:
                started = start_nodes(count, tmp, database_url, redis_url, prefix)
                yield started
            finally:
                for process, _ in started:
                    process.terminate()
                    process.wait(30)
                started = []
                delete_prefix(redis_url, prefix)
    finally:
        for process, _ in started:
            process.terminate()
            process.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)


async def watch_pulse(url: str, times: list[float], stop: asyncio.Event) -> None:
    """One more client, on the pulse channel: when its frames arrive."""
    import websockets

    async with websockets.connect(url.replace("http", "ws", 1) + "/ws", max_size=None) as ws:
        await ws.recv()
        await ws.send(json.dumps({"type": "hello", "protocol": 1, "subscribe": [
            {"channel": f"market/{MARKET}/pulse"}]}))
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                raw = await asyncio.wait_for(ws.recv(), 0.5)
                if '"patch"' in raw[:40]:
                    times.append(time.monotonic())


def proc_rss(pid: int) -> float:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import benchlib  # noqa: F401  (puts tests/ on the path)

    from support.processes import status_kb

    return status_kb(pid) / 1024


async def over_protocol(args: argparse.Namespace) -> None:
    import httpx

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from fanout import proc_cpu_seconds

    raise_nofile()
    with servers(args.nodes, args.redis_url, args.postgres_url) as nodes:
        urls = [url for _, url in nodes]
        displays = sorted(d["id"] for d in httpx.get(
            f"{urls[0]}/api/v1/markets/{MARKET}/displays").json())
        rate = args.devices / args.mean_interval
        print(f"protocol: {args.devices} WebSocket clients on {len(urls)} node(s), "
              f"{args.generators} load-generator process(es), mean {rate:.0f} reactions/s "
              f"(bursts 3x every 30 s), {args.seconds:.0f} s")
        gens = []
        per = args.devices // args.generators
        t0 = time.monotonic()
        ws_urls = ",".join(url.replace("http", "ws", 1) + "/ws" for url in urls)
        for _ in range(args.generators):
            gens.append(await asyncio.create_subprocess_exec(
                sys.executable, __file__, "--generate", ws_urls, "--devices", str(per),
                "--displays", ",".join(displays), "--seconds", str(args.seconds),
                "--rate", str(rate / args.generators),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE))
        for gen in gens:
            assert gen.stdout is not None
            line = await asyncio.wait_for(gen.stdout.readline(), 600)
            if line.strip() != b"ready":
                raise SystemExit(f"a load generator failed: {line!r}")
        pids = [p.pid for p, _ in nodes]
        print(f"  {args.devices} clients connected in {time.monotonic() - t0:.0f} s; server RSS "
              + ", ".join(f"{proc_rss(pid):.0f} MB" for pid in pids))
        frames: list[float] = []
        stop = asyncio.Event()
        watcher = asyncio.create_task(watch_pulse(urls[-1], frames, stop))
        before = [pulse_metrics(url) for url in urls]
        cpu0 = [proc_cpu_seconds(pid) for pid in pids]
        started = time.monotonic()
        for gen in gens:
            assert gen.stdin is not None
            gen.stdin.write(b"go\n")
            await gen.stdin.drain()
        samples: list[tuple[float, list[float]]] = []
        results = [asyncio.create_task(gen.stdout.readline()) for gen in gens]  # type: ignore[union-attr]
        while not all(r.done() for r in results):
            samples.append((time.monotonic() - started, [proc_rss(pid) for pid in pids]))
            await asyncio.wait(results, timeout=args.sample_every)
        wall = time.monotonic() - started
        cpu = [proc_cpu_seconds(pid) - c for pid, c in zip(pids, cpu0, strict=True)]
        after = [pulse_metrics(url) for url in urls]
        stop.set()
        await watcher
        loads = [json.loads(r.result()) for r in results]
        for gen in gens:
            await gen.wait()

    sent = sum(r["sent"] for r in loads)
    errors: dict[str, int] = {}
    for r in loads:
        for code, n in r["errors"].items():
            errors[code] = errors.get(code, 0) + n
    accepted = sum(sum(v for k, v in a[1].items() if k.startswith("accepted_")) -
                   sum(v for k, v in b[1].items() if k.startswith("accepted_"))
                   for a, b in zip(after, before, strict=True))
    print(f"  sent {sent} reactions ({sent / wall:.0f}/s), server accepted {accepted:.0f}, "
          f"errors to clients {errors or 'none'}, connections closed by the server "
          f"{sum(r['closed_by_server'] for r in loads)}")
    parts: dict[str, float] = {}
    for a, b in zip(after, before, strict=True):
        for part, value in a[0].items():
            parts[part] = parts.get(part, 0.0) + value - b[0].get(part, 0.0)
    print_pulse_cpu(parts, wall)
    for n, (pid_cpu, (_, _, leading)) in enumerate(zip(cpu, after, strict=True)):
        print(f"  node {n}{' (aggregator)' if leading else ''}: whole process "
              f"{100 * pid_cpu / wall:.1f}% of one core (WebSocket I/O, parsing, validation, "
              "pulse, hub)")
    gen_cpu = [r["cpu"] / r["wall"] for r in loads]
    print("  load generators: " + ", ".join(f"{100 * c:.0f}%" for c in gen_cpu)
          + " of one core each")
    print("  server RSS over time (s: MB per node): "
          + ", ".join(f"{t:.0f}: {'/'.join(f'{m:.0f}' for m in ms)}" for t, ms in samples))
    settled = [(t, ms) for t, ms in samples if t >= min(60.0, wall / 2)]
    if len(settled) > 1:
        for n in range(len(pids)):
            values = [ms[n] for _, ms in settled]
            print(f"  node {n} RSS after warm-up: min {min(values):.0f} MB, max "
                  f"{max(values):.0f} MB, end - first {values[-1] - values[0]:+.1f} MB")
    published = sum(a[1].get("published", 0) - b[1].get("published", 0)
                    for a, b in zip(after, before, strict=True))
    print(f"  pulse channel: {published:.0f} updates published in {wall:.0f} s; as a client "
          f"received them: {frame_rate(frames)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--mean-interval", type=float, default=10.0,
                        help="seconds between one device's reactions, on average")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--nodes", type=int, default=1, choices=(1, 2, 3))
    parser.add_argument("--generators", type=int, default=1,
                        help="load-generator processes (split the clients)")
    parser.add_argument("--sample-every", type=float, default=10.0,
                        help="seconds between server RSS samples")
    parser.add_argument("--redis-url", default=os.environ.get("HOLOBAZAAR_TEST_REDIS_URL"))
    parser.add_argument("--postgres-url",
                        default=os.environ.get("HOLOBAZAAR_TEST_POSTGRES_URL"))
    parser.add_argument("--in-process", action="store_true",
                        help="drive PulseService directly instead (no sockets)")
    parser.add_argument("--tracemalloc", action="store_true",
                        help="with --in-process: where Python memory grows after warm-up")
    parser.add_argument("--generate", metavar="WS_URLS", help=argparse.SUPPRESS)
    parser.add_argument("--displays", help=argparse.SUPPRESS)
    parser.add_argument("--rate", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    random.seed(1 if args.generate is None else None)
    if args.generate:
        asyncio.run(generate(args.generate.split(","), args.devices, args.displays.split(","),
                             args.seconds, args.rate))
    elif args.in_process:
        asyncio.run(in_process(args.devices, args.seconds, args.mean_interval,
                               args.tracemalloc))
    else:
        asyncio.run(over_protocol(args))


if __name__ == "__main__":
    main()
