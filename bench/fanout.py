"""Fan-out benchmark (issue #10): the real Holobazaar server and a minimal Node `ws`
broadcast server (bench/node/peer.js), side by side under the same load, in one run.

Holobazaar: a `holobazaar serve` subprocess on loopback (SQLite; in-process broker, or
Redis for --workers 2). Changes enter through the real path: HTTP PATCH of an item's price
(API -> inventory -> reconciler -> compositor -> hub). The peer gets the same display state
and the change as an HTTP POST. Clients are a Node `ws` load generator (bench/node/
loadgen.js) speaking the v1 protocol on one display channel: it applies every patch and
reads the change number from the state (price = 1000 + k/100), so it measures, per client
and change, the time until the client holds a state at least that new ("staleness"; with
a coalescing server a frame may carry several changes). The final-state check compares
every client's state with a fresh snapshot.

Pinning (2+ cores): server or peer on core 0, load generator and this driver on core 1.

Scenarios (--scenarios, comma-separated, or --full for all of them at 10,000 clients):
  standard  N clients x --rate changes/s for --seconds: delivered/s, p50/p90/p99/max,
            missing deliveries, server CPU and RSS, load generator CPU
  overload  N clients x --overload-rate changes/s: p99 staleness, final state equality,
            max RSS
  burst     N clients connecting at once: time until all hold their snapshot
  idle      RSS per idle connection (server and peer)
  deflate   standard with clients asking for permessage-deflate
  workers   Holobazaar only: --workers 1 vs 2, both over Redis (--redis-url)
  sweep     --sweep client counts at --rate: latency percentiles -> PNG plot (--plot)
  market    a generated market: --displays displays x --clients clients, 4 zone
            channels with shows firing, the pulse channel, items on several displays,
            manual changes at --rate and feed batches; staleness per channel
            (bench/market_scenario.py; Holobazaar only: the peer relays one channel)
  tls       standard over TLS: `serve --certfile/--keyfile` (a local CA's certificate,
            holobazaar.tls) and the peer's https.createServer + ws on the same
            certificate; clients over wss:// trusting that CA (issue #26)

    python bench/fanout.py --quick                    # smoke: 50 clients, 2 s, standard
    python bench/fanout.py --clients 500              # standard, 500 clients, 10/s, 10 s
    python bench/fanout.py --scenarios overload,burst --clients 1000
    python bench/fanout.py --full --write-docs        # everything at 10k, ~10 minutes

Needs `make bench` (Python extra `bench` for the plot; npm packages of bench/node) and
the demo assets (`make setup`). Every run is bounded (timeouts) and kills its children.
Results: printed, and written as JSON to --out (bench/results/fanout-<time>.json).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from benchlib import NodeTool, die_with_parent, percentile, proc_cpu_seconds, stop, wait_ready

from support.databases import delete_prefix
from support.net import free_port
from support.processes import holobazaar_command, status_kb

REPO = Path(__file__).resolve().parents[1]
NODE_DIR = REPO / "bench" / "node"
# HON-COMB is shown only in the item list of its display, so a price change is one
# ~200-byte patch frame (issue #10 measures 200-byte frames).
MARKET, DISPLAY, SKU = "greenhaven", "bijenhof-honey", "HON-COMB"
CHANNEL = f"market/{MARKET}/display/{DISPLAY}"
PRICE_PATH = f"/items/{SKU}/price"
PRICE_BASE = 1000
DOCS = REPO / "docs" / "performance.md"
LOADGEN_SATURATED = 0.8  # share of its core above which the generator may be the limit
CONNECT_BATCH = 250  # clients connecting at a time, except in the burst (loadgen --batch)
MAX_CHANGES_IN_FLIGHT = 512  # open loop: bounded only so a dead server cannot pile up
SCENARIOS = ("standard", "overload", "burst", "idle", "deflate", "workers", "sweep", "tls",
             "market")





def proc_rss_mb(pid: int) -> float:
    return status_kb(pid) / 1024


def process_tree(pid: int) -> list[int]:
    """pid and its descendants (uvicorn's workers are children of `holobazaar serve`)."""
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{current}/task").iterdir():
                todo.extend(int(c) for c in (task / "children").read_text().split())
    return pids


def tree_sum(pid: int, measure) -> float:
    """measure(pid) summed over the process tree (processes that just ended count 0)."""
    total = 0.0
    for p in process_tree(pid):
        with contextlib.suppress(OSError):
            total += measure(p)
    return total


def tree_cpu_seconds(pid: int) -> float:
    return tree_sum(pid, proc_cpu_seconds)


def tree_cpu_by_process(pid: int) -> dict[int, float]:
    cpu: dict[int, float] = {}
    for p in process_tree(pid):
        with contextlib.suppress(OSError):
            cpu[p] = proc_cpu_seconds(p)
    return cpu


def socket_count(pid: int) -> int:
    """Open sockets of one process: with --workers, the devices each worker carries."""
    count = 0
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                count += os.readlink(fd).startswith("socket:")
    return count


def tree_rss_mb(pid: int) -> float:
    return tree_sum(pid, proc_rss_mb)




def price(seq: int) -> str:
    return f"{PRICE_BASE + seq / 100:.2f}"


def pinned(command: list[str], cpus: str | None) -> list[str]:
    return ["taskset", "-c", cpus, *command] if cpus else command


class RssSampler:
    """Max RSS of a process tree, sampled from /proc every `interval` seconds."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.pid, self.interval, self.max_mb = pid, interval, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.max_mb = max(self.max_mb, tree_rss_mb(self.pid))
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.max_mb = max(self.max_mb, tree_rss_mb(self.pid))


# ---- targets: the server under test -------------------------------------------------


class Holobazaar:
    name = "holobazaar"

    def __init__(self, cpus: str | None, workers: int = 1, redis_url: str | None = None,
                 content: Path = REPO, env: dict[str, str] | None = None):
        self.cpus, self.workers, self.redis_url = cpus, workers, redis_url
        self.content, self.env = content, env  # the scenes served; extra environment
        self.process: subprocess.Popen | None = None
        self.tmp: Path | None = None
        self.prefix: str | None = None
        self.headers: dict[str, str] = {}
        self.tls: Any = None  # holobazaar.tls.certificates.TlsFiles: serve over TLS

    def start(self) -> str:
        self.tmp = Path(tempfile.mkdtemp(prefix="holobazaar-fanout-"))
        port = free_port()
        self.url = f"{'https' if self.tls else 'http'}://127.0.0.1:{port}"
        exe = holobazaar_command()
        command = [exe, "serve", "--port", str(port), "--data-dir", str(self.tmp),
                   "--content", str(self.content), "--no-watch", "--log-level", "warning"]
        if self.tls:
            command += ["--certfile", str(self.tls.certfile), "--keyfile",
                        str(self.tls.keyfile), "--http-port", "0"]
        if self.redis_url:
            self.prefix = f"hbfanout:{secrets.token_hex(4)}:"
            command += ["--broker-url", self.redis_url, "--redis-prefix", self.prefix,
                        "--workers", str(self.workers)]
        self.log = (self.tmp / "server.log").open("w")
        self.process = subprocess.Popen(pinned(command, self.cpus), stdout=self.log,
                                        stderr=subprocess.STDOUT, preexec_fn=die_with_parent,
                                        env={**os.environ, **(self.env or {})})
        try:
            wait_ready(self.url, 180)
        except SystemExit:
            self.log.flush()
            tail = (self.tmp / "server.log").read_text()[-2000:]
            status = self.process.poll()
            raise SystemExit(f"holobazaar serve did not answer /healthz within 180 s "
                             f"({'still running' if status is None else f'exit {status}'}):"
                             f"\n{tail}") from None
        if self.content != REPO:
            return self.url.replace("http", "ws", 1) + "/ws"  # its own market: no token here
        token = subprocess.run(
            [exe, "token", "create", "--role", "curator", "--market", MARKET, "--name",
             "fanout bench", "--data-dir", str(self.tmp)],
            capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
        self.headers = {"Authorization": f"Bearer {token}"}
        return self.url.replace("http", "ws", 1) + "/ws"

    async def change(self, http: httpx.AsyncClient, seq: int) -> None:
        response = await http.patch(f"/api/v1/markets/{MARKET}/items/{SKU}",
                                    json={"price": price(seq), "confirm": True})
        response.raise_for_status()

    def stop(self) -> None:
        stop(self.process, 15)
        if self.redis_url and self.prefix:
            with contextlib.suppress(Exception):
                delete_prefix(self.redis_url, self.prefix)
        if self.tmp:
            self.log.close()
            shutil.rmtree(self.tmp, ignore_errors=True)


class Peer:
    name = "peer"

    def __init__(self, cpus: str | None, snapshot: dict, deflate: bool = False):
        self.cpus, self.snapshot, self.deflate = cpus, snapshot, deflate
        self.process: subprocess.Popen | None = None
        self.tmp: Path | None = None
        self.headers: dict[str, str] = {}
        self.tls: Any = None  # the certificate Holobazaar serves with

    def start(self) -> str:
        self.tmp = Path(tempfile.mkdtemp(prefix="holobazaar-peer-"))
        state_file = self.tmp / "snapshot.json"
        state_file.write_text(json.dumps(self.snapshot))
        port = free_port()
        command = ["node", str(NODE_DIR / "peer.js"), "--port", str(port), "--state",
                   str(state_file), "--channel", CHANNEL, "--sku", SKU]
        if self.deflate:
            command.append("--deflate")
        if self.tls:
            command += ["--cert", str(self.tls.certfile), "--key", str(self.tls.keyfile)]
        self.process = subprocess.Popen(pinned(command, self.cpus), stdout=subprocess.DEVNULL,
                                        preexec_fn=die_with_parent)
        self.url = f"{'https' if self.tls else 'http'}://127.0.0.1:{port}"
        wait_ready(self.url, 30)
        return self.url.replace("http", "ws", 1) + "/ws"

    async def change(self, http: httpx.AsyncClient, seq: int) -> None:
        (await http.post("/change", json={"price": price(seq)})).raise_for_status()

    def stop(self) -> None:
        stop(self.process)
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)


def fetch_snapshot(ws_url: str) -> dict:
    """The display's snapshot frame from a running Holobazaar (the peer serves the same)."""
    import websockets

    async def get() -> dict:
        async with websockets.connect(ws_url, max_size=None) as ws:
            await ws.recv()  # welcome
            await ws.send(json.dumps({"type": "hello", "protocol": 1,
                                      "subscribe": [{"channel": CHANNEL}]}))
            return json.loads(await asyncio.wait_for(ws.recv(), 10))

    return asyncio.run(asyncio.wait_for(get(), 30))


# ---- the load generator -------------------------------------------------------------


class LoadGen(NodeTool):
    name = "load generator"

    def __init__(self, ws_url: str, clients: int, changes: int, cpus: str | None,
                 deflate: bool, burst: bool, connect_timeout: float):
        command = ["node", str(NODE_DIR / "loadgen.js"), "--url", ws_url, "--clients",
                   str(clients), "--channel", CHANNEL, "--sku", SKU, "--base",
                   str(PRICE_BASE), "--changes", str(changes), "--connect-timeout",
                   str(connect_timeout), "--batch", str(CONNECT_BATCH)]
        if deflate:
            command.append("--deflate")
        if burst:
            command.append("--burst")
        super().__init__(pinned(command, cpus))


async def send_changes(target: Holobazaar | Peer, changes: int,
                       rate: float) -> tuple[list[float], dict[int, float], list[str]]:
    """Change k is sent at start + k/rate whether or not the server has answered the ones
    before (open loop: a source of changes does not wait for the fan-out). Returns the send
    instants (CLOCK_MONOTONIC ms, the load generator's clock), each answered request's
    duration (ms, by change number) and the requests that failed twice (their changes
    count as missing)."""
    sent = [0.0] * changes
    answered: dict[int, float] = {}
    failures: list[str] = []
    in_flight = asyncio.Semaphore(MAX_CHANGES_IN_FLIGHT)
    # Idle connections are dropped before uvicorn's 5 s keep-alive timeout closes them.
    limits = httpx.Limits(max_connections=MAX_CHANGES_IN_FLIGHT, keepalive_expiry=2)
    async with httpx.AsyncClient(base_url=target.url, headers=target.headers, timeout=60,
                                 limits=limits) as http:

        async def one(seq: int) -> None:
            try:
                for attempt in (1, 2):  # one retry of a connection the server closed
                    try:
                        await target.change(http, seq)
                        answered[seq] = time.monotonic_ns() / 1e6 - sent[seq]
                        return
                    except httpx.TransportError as exc:
                        if attempt == 2:
                            failures.append(f"change {seq}: {exc!r}")
            finally:
                in_flight.release()

        tasks = []
        start = time.monotonic()
        for seq in range(changes):
            delay = start + seq / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await in_flight.acquire()
            sent[seq] = time.monotonic_ns() / 1e6
            tasks.append(asyncio.create_task(one(seq)))
        await asyncio.gather(*tasks)
    return sent, answered, failures


async def warm_up(target: Holobazaar | Peer) -> None:
    """One change before the clients connect, to either target: the first change after a
    start pays one-off costs (FastAPI's first look at the route, SQL compiled on first
    use; ~50-80 ms here), which at 100 clients x 100 changes would be the whole p99. Its
    price (below PRICE_BASE) is no change number: the load generator ignores it."""
    async with httpx.AsyncClient(base_url=target.url, headers=target.headers,
                                 timeout=60) as http:
        await target.change(http, -1)


# ---- one measured case ----------------------------------------------------------------


@dataclass
class Options:
    server_cpus: str | None
    loadgen_cpus: str | None
    drain: float
    connect_timeout: float
    idle_settle: float = 2.0
    snapshot: dict = field(default_factory=dict)
    tls: Any = None  # TlsFiles: targets serve over TLS (the tls scenario)


def run_case(target: Holobazaar | Peer, opts: Options, clients: int, rate: float,
             seconds: float, *, deflate: bool = False, burst: bool = False) -> dict[str, Any]:
    """Start the target, connect the clients, send rate*seconds changes, collect figures."""
    changes = int(rate * seconds)
    loadgen = None
    try:
        ws_url = target.start()
        if isinstance(target, Holobazaar) and not opts.snapshot:
            opts.snapshot = fetch_snapshot(ws_url)
        asyncio.run(warm_up(target))
        pid = target.process.pid  # type: ignore[union-attr]
        time.sleep(0.5)
        rss_before = tree_rss_mb(pid)
        cpu_connect0 = tree_cpu_seconds(pid)
        with RssSampler(pid) as sampler:
            loadgen = LoadGen(ws_url, clients, changes, opts.loadgen_cpus, deflate, burst,
                              opts.connect_timeout)
            ready = loadgen.expect("ready", opts.connect_timeout + 30)
            connect_cpu = tree_cpu_seconds(pid) - cpu_connect0
            time.sleep(opts.idle_settle)
            rss_connected = tree_rss_mb(pid)
            sockets = {p: socket_count(p) for p in process_tree(pid)}
            by_process0 = tree_cpu_by_process(pid)
            cpu0, loadgen_cpu0 = tree_cpu_seconds(pid), loadgen.cpu_seconds()
            sent, answered, failures = asyncio.run(send_changes(target, changes, rate))
            loadgen.send({"cmd": "finish", "sent": sent, "drain_s": opts.drain})
            result = loadgen.expect("result", opts.drain + 120)
            server_cpu = tree_cpu_seconds(pid) - cpu0
            by_process = {p: c - by_process0.get(p, 0.0)
                          for p, c in tree_cpu_by_process(pid).items()}
            loadgen_cpu = loadgen.cpu_seconds() - loadgen_cpu0
            rss_after = tree_rss_mb(pid)
    finally:
        target.stop()  # the server closes first: TIME_WAIT stays on its side
        if loadgen:
            loadgen.close()
    delivered = result["delivered"]
    send_time = (sent[-1] - sent[0]) / 1000 if len(sent) > 1 else 0.0
    if send_time > 0.5 and loadgen_cpu / send_time > LOADGEN_SATURATED:
        print(f"  warning: the load generator used {loadgen_cpu / send_time:.2f} of its core "
              f"({target.name}, {clients} clients): latencies may be its own, not the "
              "server's; compare server CPU per delivery")
    return {
        "target": target.name, "clients": clients, "rate": rate, "seconds": seconds,
        "deflate": deflate, "burst": burst, "workers": getattr(target, "workers", 1),
        "ready": ready["ready"], "connect_s": rounded(ready["connect_s"], 3),
        "connect_p50_s": rounded(ready["connect_p50_s"], 3),
        "connect_failures": ready["connect_failures"],
        "connect_server_cpu_s": round(connect_cpu, 3),
        "changes": result["changes"],
        "achieved_rate": round((changes - 1) / send_time, 2) if send_time > 0 else None,
        "change_failures": len(failures), "change_failure_examples": failures[:3],
        "change_p50_ms": rounded(percentile(list(answered.values()), 50), 1) if answered else None,
        "change_p99_ms": rounded(percentile(list(answered.values()), 99), 1) if answered else None,
        # Which changes were slow tells a one-off (the first, a collection) from a trend.
        "change_slowest": [f"#{seq} {ms:.0f} ms" for seq, ms in sorted(
            answered.items(), key=lambda pair: pair[1])[-3:][::-1]],
        "expected": result["expected"], "delivered": delivered, "missing": result["missing"],
        "delivered_per_s": result["delivered_per_s"], "frames_per_s": result["frames_per_s"],
        "p50_ms": result["p50_ms"], "p90_ms": result["p90_ms"], "p99_ms": result["p99_ms"],
        "max_ms": result["max_ms"],
        "final_state_equal": result["final_state_equal"],
        "final_version_equal": result["final_version_equal"],
        "server_cpu_s": round(server_cpu, 2),
        "server_us_per_delivery": round(server_cpu / delivered * 1e6, 2) if delivered else None,
        "rss_before_mb": round(rss_before, 1), "rss_connected_mb": round(rss_connected, 1),
        "rss_after_mb": round(rss_after, 1), "rss_max_mb": round(sampler.max_mb, 1),
        "idle_kb_per_client": round((rss_connected - rss_before) * 1024 / clients, 2),
        "loadgen_cpu_s": round(loadgen_cpu, 2),
        # Processes that served devices (uvicorn's supervisor holds none): CPU and sockets.
        "process_cpu_s": [round(by_process.get(p, 0.0), 2) for p, n in sockets.items()
                          if n > clients // 20],
        "process_sockets": [n for n in sockets.values() if n > clients // 20],
        "loadgen_core_share": round(loadgen_cpu / send_time, 2) if send_time > 0.5 else None,
        "patch_frame_bytes": result["patch_frame_bytes"],
        "loadgen_stats": result["stats"], "error_codes": result["error_codes"],
    }


def rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


# ---- scenarios ------------------------------------------------------------------------


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}x" if a and b else "-"


def show(title: str, rows: list[dict], columns: list[tuple[str, str]]) -> None:
    print(f"\n{title}")
    widths = [max(len(label), 10) for _, label in columns]
    print("  " + "  ".join(f"{label:>{w}}" for (_, label), w in zip(columns, widths,
                                                                      strict=True)))
    for row in rows:
        cells = []
        for (key, _), w in zip(columns, widths, strict=True):
            value = row.get(key)
            cells.append(f"{'-' if value is None else value!s:>{w}}")
        print("  " + "  ".join(cells), flush=True)


STANDARD_COLUMNS = [
    ("target", "server"), ("clients", "clients"), ("achieved_rate", "changes/s"),
    ("delivered", "delivered"),
    ("missing", "missing"), ("delivered_per_s", "deliv/s"), ("p50_ms", "p50 ms"),
    ("p90_ms", "p90 ms"), ("p99_ms", "p99 ms"), ("max_ms", "max ms"),
    ("server_cpu_s", "srv CPU s"), ("server_us_per_delivery", "us/deliv"),
    ("rss_max_mb", "max RSS MB"), ("loadgen_cpu_s", "gen CPU s"),
]


def targets_for(args: argparse.Namespace, opts: Options, deflate: bool = False):
    for name in args.targets:
        if name == "holobazaar":
            server = Holobazaar(opts.server_cpus)
            server.tls = opts.tls
            yield server
        else:
            if not opts.snapshot:  # the peer serves Holobazaar's state: fetch it once
                probe = Holobazaar(opts.server_cpus)
                try:
                    opts.snapshot = fetch_snapshot(probe.start())
                finally:
                    probe.stop()
            peer = Peer(opts.server_cpus, opts.snapshot, deflate)
            peer.tls = opts.tls
            yield peer


def scenario_tls(args, opts) -> list[dict]:
    """The standard scenario with both servers on one certificate of a local CA (made
    here, as `serve --tls` makes it) and every client trusting that CA: Python's httpx
    and websockets through SSL_CERT_FILE, the Node load generator through
    NODE_EXTRA_CA_CERTS."""
    from holobazaar.tls.certificates import ensure_local_certificates

    folder = Path(tempfile.mkdtemp(prefix="holobazaar-tls-"))
    saved = {k: os.environ.get(k) for k in ("SSL_CERT_FILE", "NODE_EXTRA_CA_CERTS")}
    try:
        opts.tls = ensure_local_certificates(folder)
        os.environ["SSL_CERT_FILE"] = os.environ["NODE_EXTRA_CA_CERTS"] = str(
            opts.tls.ca_file)
        rows = [run_case(t, opts, args.clients, args.rate, args.seconds)
                for t in targets_for(args, opts)]
    finally:
        opts.tls = None
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(folder, ignore_errors=True)
    for row in rows:
        row["tls"] = True
    show(f"tls: {args.clients} clients over wss:// x {args.rate:g} changes/s x "
         f"{args.seconds:g} s", rows, STANDARD_COLUMNS)
    if len(rows) == 2:
        print(f"  holobazaar / peer over TLS: delivered/s "
              f"{pair_ratio(rows, 'delivered_per_s')}, p99 {pair_ratio(rows, 'p99_ms')}, "
              f"server CPU per delivery {pair_ratio(rows, 'server_us_per_delivery')}")
    return rows


def scenario_market(args, opts) -> list[dict]:
    """Holobazaar alone: the peer (bench/node/peer.js) relays one display channel and has
    no zones, shows, pulse or feed, so it cannot represent a market."""
    import market_scenario

    if "peer" in args.targets:
        print("\nmarket: the Node peer relays one display channel only (no zone channels, "
              "shows, pulse or feed batches): Holobazaar alone, against the 250 ms goal")
    if "holobazaar" not in args.targets:
        return []
    row = market_scenario.run(
        lambda content, env: Holobazaar(opts.server_cpus, content=content, env=env),
        displays=args.displays, clients=args.market_clients, seconds=args.seconds,
        rate=args.rate, drain=opts.drain, loadgen_cpus=opts.loadgen_cpus,
        connect_timeout=opts.connect_timeout, cpu_seconds=tree_cpu_seconds,
        feed_every=args.feed_every)
    market_scenario.show(row)
    if args.market_plot:
        market_scenario.plot(row, Path(args.market_plot))
    return [row]


def pair_ratio(rows: list[dict], key: str) -> str:
    by = {r["target"]: r.get(key) for r in rows}
    return ratio(by.get("holobazaar"), by.get("peer"))


def scenario_standard(args, opts, deflate: bool = False) -> list[dict]:
    rows = [run_case(t, opts, args.clients, args.rate, args.seconds, deflate=deflate)
            for t in targets_for(args, opts, deflate)]
    title = (f"{'deflate' if deflate else 'standard'}: {args.clients} clients x "
             f"{args.rate:g} changes/s x {args.seconds:g} s")
    show(title, rows, STANDARD_COLUMNS)
    if len(rows) == 2:
        print(f"  holobazaar / peer: delivered/s {pair_ratio(rows, 'delivered_per_s')}, "
              f"p99 {pair_ratio(rows, 'p99_ms')}, server CPU "
              f"{pair_ratio(rows, 'server_cpu_s')}")
    for r in rows:
        print(f"  {r['target']}: patch frames of {r['patch_frame_bytes']} bytes, change "
              f"requests p50 {r['change_p50_ms']} ms / p99 {r['change_p99_ms']} ms "
              f"({r['change_failures']} failed; slowest {', '.join(r['change_slowest'])}), "
              f"load generator {r['loadgen_core_share']} of a core")
    return rows


def scenario_overload(args, opts) -> list[dict]:
    rows = [run_case(t, opts, args.clients, args.overload_rate, args.seconds)
            for t in targets_for(args, opts)]
    for r in rows:
        r["final_equal"] = f"{r['final_state_equal']}/{r['clients']}"
    show(f"overload: {args.clients} clients x {args.overload_rate:g} changes/s x "
         f"{args.seconds:g} s (staleness: change sent -> client holds a state that new)",
         rows, [("target", "server"), ("achieved_rate", "changes/s"),
                ("change_p99_ms", "chg req p99"), ("change_failures", "chg fails"),
                ("p50_ms", "p50 ms"), ("p99_ms", "p99 ms"),
                ("max_ms", "max ms"), ("frames_per_s", "frames/s"),
                ("final_equal", "final ok"), ("rss_max_mb", "max RSS MB"),
                ("server_cpu_s", "srv CPU s"), ("loadgen_cpu_s", "gen CPU s")])
    return rows


def scenario_connect(args, opts, burst: bool) -> list[dict]:
    rows = [run_case(t, opts, args.clients, 1, 0, burst=burst) for t in targets_for(args, opts)]
    show(f"{'connect burst' if burst else 'idle'}: {args.clients} clients "
         f"{'connecting at once' if burst else 'connected, idle'}", rows,
         [("target", "server"), ("ready", "ready"), ("connect_s", "all snap s"),
          ("connect_p50_s", "p50 s"), ("connect_failures", "conn fails"),
          ("connect_server_cpu_s", "srv CPU s"), ("rss_before_mb", "RSS 0 MB"),
          ("rss_connected_mb", "RSS N MB"), ("idle_kb_per_client", "KB/conn")])
    return rows


def scenario_workers(args, opts) -> list[dict]:
    import redis

    try:
        redis.Redis.from_url(args.redis_url, socket_timeout=3).ping()
    except (redis.RedisError, ValueError) as exc:
        print(f"\nworkers: skipped: no Redis at --redis-url {args.redis_url}: {exc}")
        return []
    rows = []
    for workers in (1, 2):
        # Two workers need both cores: the load generator shares core 1 with one of them.
        cpus = opts.server_cpus if workers == 1 else args.workers_cpus
        rows.append(run_case(Holobazaar(cpus, workers, args.redis_url), opts, args.clients,
                             args.rate, args.seconds))
    show(f"workers (Redis broker): {args.clients} clients x {args.rate:g} changes/s x "
         f"{args.seconds:g} s", rows, [("workers", "workers"), *STANDARD_COLUMNS[1:]])
    gain = ratio(rows[1]["delivered_per_s"], rows[0]["delivered_per_s"])
    print(f"  2 / 1 workers: delivered/s {gain}")
    for row in rows:
        print(f"  {row['workers']} worker(s): sockets per serving process "
              f"{row['process_sockets']}, CPU s {row['process_cpu_s']}")
    return rows


def scenario_sweep(args, opts, reuse: list[dict]) -> list[dict]:
    rows = []
    for clients in args.sweep:
        for target in targets_for(args, opts):
            done = [r for r in reuse if r["target"] == target.name and r["clients"] == clients
                    and r["rate"] == args.rate and r["seconds"] == args.seconds
                    and not r["deflate"] and not r["burst"] and r["workers"] == 1]
            rows.append(done[0] if done else run_case(target, opts, clients, args.rate,
                                                      args.seconds))
    show(f"sweep: clients x {args.rate:g} changes/s x {args.seconds:g} s", rows,
         STANDARD_COLUMNS)
    if args.plot:
        plot(rows, Path(args.plot), args.rate)
    return rows


def plot(rows: list[dict], path: Path, rate: float) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("  plot: matplotlib is missing (pip install -e '.[bench]' or make bench)")
        return
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    styles = {"holobazaar": "tab:green", "peer": "tab:blue"}
    labels = {"holobazaar": "Holobazaar", "peer": "Node ws peer"}
    for target, color in styles.items():
        points = sorted((r for r in rows if r["target"] == target), key=lambda r: r["clients"])
        if not points:
            continue
        xs = [r["clients"] for r in points]
        for key, dash in (("p50_ms", ":"), ("p90_ms", "--"), ("p99_ms", "-")):
            ax.plot(xs, [r[key] for r in points], dash, color=color, marker="o",
                    label=f"{labels[target]} {key.split('_')[0]}")
    ax.set_xlabel("clients on one display channel")
    ax.set_ylabel(f"latency, change -> client (ms), {rate:g} changes/s")
    ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("Fan-out latency percentiles vs clients")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    print(f"  plot: {path}")


def deflate_costs(runs: dict[str, list[dict]]) -> list[str]:
    """Deflate against plain, per server, when both scenarios ran."""
    lines = []
    for plain in runs.get("standard", []) if runs.get("deflate") else []:
        packed = [r for r in runs["deflate"] if r["target"] == plain["target"]]
        if packed:
            lines.append(f"deflate cost, {plain['target']}: server CPU "
                         f"{ratio(packed[0]['server_cpu_s'], plain['server_cpu_s'])} of plain, "
                         f"p99 {packed[0]['p99_ms']} vs {plain['p99_ms']} ms, max RSS "
                         f"{packed[0]['rss_max_mb']} vs {plain['rss_max_mb']} MB")
    return lines


BEGIN, END = "<!-- fanout-results:begin -->", "<!-- fanout-results:end -->"


def markdown(results: dict) -> str:
    """The run's figures as the Markdown section of docs/performance.md."""
    m, a, runs = results["machine"], results["args"], results["scenarios"]
    lines = [f"Run of {results.get('started', '?')}: "
             f"`bench/fanout.py {a['command']}` on {m['nproc']} CPUs ({m['cpu']}), "
             f"Linux {m['kernel']}, Python {m['python']}, Node {m['node']}, load average "
             f"at start {m['load_avg']}.", ""]
    if m["load_avg"][0] > 0.5 * (m["nproc"] or 1):
        lines[-1:] = ["", f"The machine was busy (load average {m['load_avg'][0]} on "
                      f"{m['nproc']} CPUs at start): latencies are noisy; compare CPU per "
                      "delivery and memory rather than wall-clock figures.", ""]

    def table(title: str, rows: list[dict], columns: list[tuple[str, str]]) -> None:
        if not rows:
            return
        lines.extend([f"**{title}**", "", "| " + " | ".join(c for _, c in columns) + " |",
                      "|" + "---|" * len(columns)])
        for row in rows:
            lines.append("| " + " | ".join("-" if row.get(k) is None else str(row.get(k))
                                           for k, _ in columns) + " |")
        lines.append("")

    load = [("target", "server"), ("clients", "clients"), ("achieved_rate", "changes/s"),
            ("delivered", "delivered"), ("missing", "missing"),
            ("delivered_per_s", "delivered/s"), ("p50_ms", "p50 ms"), ("p90_ms", "p90 ms"),
            ("p99_ms", "p99 ms"), ("max_ms", "max ms"), ("final_state_equal", "final ok"),
            ("server_cpu_s", "server CPU s"), ("server_us_per_delivery", "µs/delivery"),
            ("rss_max_mb", "max RSS MB"), ("loadgen_cpu_s", "loadgen CPU s")]
    size = f"{a['clients']} clients"
    table(f"(a) standard: {size} x {a['rate']:g} changes/s x {a['seconds']:g} s",
          runs.get("standard", []), load)
    table(f"(b) overload: {size} x {a['overload_rate']:g} changes/s x {a['seconds']:g} s "
          "(latency = staleness)", runs.get("overload", []), load)
    connect = [("target", "server"), ("clients", "clients"), ("ready", "ready"),
               ("connect_s", "all snapshots s"), ("connect_p50_s", "p50 s"),
               ("connect_failures", "failed attempts"), ("rss_before_mb", "RSS before MB"),
               ("rss_connected_mb", "RSS connected MB"), ("idle_kb_per_client", "KB/conn")]
    if runs.get("burst"):
        table(f"(c) connect burst, (d) idle memory: {size} at once", runs["burst"], connect)
    else:
        table(f"(d) idle memory: {size}, {CONNECT_BATCH} connecting at a time",
              runs.get("idle", []), connect)
    table(f"(e) permessage-deflate: {size} x {a['rate']:g} changes/s x {a['seconds']:g} s",
          runs.get("deflate", []), load)
    lines.extend(f"{line}  " for line in deflate_costs(runs))
    if runs.get("deflate") and runs.get("standard"):
        lines.append("")
    table(f"(f) workers 1 vs 2 (Redis broker): {size} x {a['rate']:g} changes/s",
          runs.get("workers", []), [("workers", "workers"), *load[1:],
                                    ("process_sockets", "sockets per worker"),
                                    ("process_cpu_s", "CPU s per worker")])
    table(f"(g) sweep x {a['rate']:g} changes/s x {a['seconds']:g} s",
          runs.get("sweep", []), load)
    table(f"(h) TLS (wss://, one certificate): {size} x {a['rate']:g} changes/s x "
          f"{a['seconds']:g} s", runs.get("tls", []), load)
    return "\n".join(lines)


def write_docs(results: dict, path: Path) -> None:
    text = path.read_text()
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{path}: no {BEGIN} ... {END} section to replace")
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    path.write_text(f"{head}{BEGIN}\n{markdown(results)}\n{END}{tail}")
    print(f"docs: {path} updated")


def machine() -> dict[str, Any]:
    model = next((line.split(":", 1)[1].strip() for line in
                  Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), "unknown")
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    return {"nproc": os.cpu_count(), "cpu": model, "kernel": os.uname().release,
            "python": sys.version.split()[0], "node": node,
            "load_avg": [round(x, 2) for x in os.getloadavg()]}


# ---- main ---------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenarios", help=f"comma-separated, from {','.join(SCENARIOS)} "
                        "[standard; --full: all]")
    parser.add_argument("--full", action="store_true",
                        help="every scenario at 10,000 clients, sweep 1k,5k,10k, plot into "
                        "docs/performance-fanout.png (about 10 minutes)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 50 clients, 2 s, sweep 20,50 (unless given)")
    parser.add_argument("--targets", default="holobazaar,peer",
                        help="holobazaar, peer or both [holobazaar,peer]")
    parser.add_argument("--clients", type=int,
                        help="clients [500; --full: 10000; --quick: 50]; market: per "
                        "display (and on the pulse channel) [500; --quick: 10]")
    parser.add_argument("--rate", type=float, default=10.0, help="changes per second [10]")
    parser.add_argument("--overload-rate", type=float, default=50.0,
                        help="changes per second of the overload scenario [50]")
    parser.add_argument("--seconds", type=float, help="seconds of changes [10; --quick: 2]")
    parser.add_argument("--drain", type=float, default=30.0,
                        help="seconds to wait, after the last change, for every client to "
                        "hold it [30]")
    parser.add_argument("--sweep", help="client counts of the sweep [1000,5000,10000]")
    parser.add_argument("--connect-timeout", type=float, default=120.0,
                        help="seconds for every client to hold its snapshot [120]")
    parser.add_argument("--redis-url", default=os.environ.get("HOLOBAZAAR_TEST_REDIS_URL",
                                                              "redis://127.0.0.1:6379/0"),
                        help="broker of the workers scenario (a private key prefix per run)")
    parser.add_argument("--no-pin", action="store_true",
                        help="do not pin (default: server core 0, load generator core 1)")
    parser.add_argument("--workers-cpus", default="0,1",
                        help="cores of the 2-worker server [0,1]")
    parser.add_argument("--displays", type=int, default=20,
                        help="market scenario: displays (4 zones) [20]")
    parser.add_argument("--market-plot", help="market scenario: PNG of staleness per channel")
    parser.add_argument("--feed-every", type=float, default=2.0,
                        help="market scenario: seconds between feed batches (0: none) [2]")
    parser.add_argument("--plot", help="PNG of the sweep [--full: docs/performance-fanout.png]")
    parser.add_argument("--out", help="JSON results [bench/results/fanout-<time>.json]")
    parser.add_argument("--json", action="store_true", help="print the results as JSON too")
    parser.add_argument("--write-docs", nargs="?", const=str(DOCS), metavar="MD",
                        help="replace the results section of docs/performance.md (between "
                        "its fanout-results markers) with this run's tables")
    args = parser.parse_args(argv)
    if args.full and args.quick:
        parser.error("--full and --quick exclude each other")
    scenarios = args.scenarios or ("all" if args.full else "standard")
    args.scenarios = list(SCENARIOS) if scenarios == "all" else [
        s.strip() for s in scenarios.split(",") if s.strip()]
    unknown = set(args.scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"--scenarios: unknown {', '.join(sorted(unknown))}; "
                     f"choose from {', '.join(SCENARIOS)}")
    args.targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    if not args.targets or set(args.targets) - {"holobazaar", "peer"}:
        parser.error("--targets: holobazaar, peer or both")
    if args.quick:
        args.clients = args.clients or 50
        args.seconds = args.seconds or 2.0
        args.sweep = args.sweep or "20,50"
        args.drain = min(args.drain, 10.0)
    # The market scenario's --clients are per display (20 x 500 = 10,000 in all).
    args.market_clients = args.clients or (10 if args.quick else 500)
    if args.clients is None:
        args.clients = 10000 if args.full else 500
    if args.seconds is None:
        args.seconds = 10.0
    sweep = args.sweep or "1000,5000,10000"
    try:
        args.sweep = [int(n) for n in sweep.split(",")]
    except ValueError:
        parser.error(f"--sweep: comma-separated client counts, got {sweep!r}")
    if args.write_docs:
        docs = Path(args.write_docs)
        if not docs.is_file() or BEGIN not in docs.read_text() or END not in docs.read_text():
            parser.error(f"--write-docs: {docs} is not a file with a {BEGIN} ... {END} section")
    if args.market_plot is None and args.full:
        args.market_plot = str(REPO / "docs" / "performance-market.png")
    if args.plot is None and args.full:
        args.plot = str(REPO / "docs" / "performance-fanout.png")
    if args.clients < 1 or args.rate <= 0 or args.seconds <= 0 or min(args.sweep) < 1:
        parser.error("--clients, --rate, --seconds and --sweep must be positive")
    return args


def check_setup() -> None:
    if shutil.which("node") is None:
        raise SystemExit("node is not on PATH (the load generator and the peer are Node)")
    if not (NODE_DIR / "node_modules" / "ws").is_dir():
        raise SystemExit(f"{NODE_DIR}/node_modules is missing: run `make bench` "
                         "(or `npm ci` in bench/node)")
    if not (REPO / "assets" / "build").is_dir():
        raise SystemExit("assets/build is missing: run `make setup` (the server refuses to "
                         "start without the demo models)")


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    check_setup()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    most = max([args.clients, *args.sweep, (args.displays + 1) * args.market_clients
                if "market" in args.scenarios else 0])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, most + 1024))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))  # inherited by the children
    if want < most + 64:
        print(f"warning: RLIMIT_NOFILE hard limit {hard} is below {most} clients")
    pin = not args.no_pin and (os.cpu_count() or 1) >= 2 and shutil.which("taskset")
    opts = Options(server_cpus="0" if pin else None, loadgen_cpus="1" if pin else None,
                   drain=args.drain, connect_timeout=args.connect_timeout,
                   idle_settle=0.5 if args.quick else 2.0)
    if pin:
        os.sched_setaffinity(0, {1})  # the driver shares core 1 with the load generator
    else:
        args.workers_cpus = None
    info = machine()
    print(f"fan-out bench: {info['nproc']} CPUs ({info['cpu']}), kernel {info['kernel']}, "
          f"Python {info['python']}, Node {info['node']}, load {info['load_avg']}; "
          f"pinning: {'server core 0, load generator + driver core 1' if pin else 'off'}")
    results: dict[str, Any] = {"machine": info, "args": {
        k: v for k, v in vars(args).items() if k not in {"json", "out"}}, "scenarios": {}}
    results["args"]["command"] = " ".join(argv if argv is not None else sys.argv[1:])
    runs = results["scenarios"]
    results["started"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    started = time.monotonic()
    for name in args.scenarios:
        if name == "standard":
            runs[name] = scenario_standard(args, opts)
        elif name == "deflate":
            runs[name] = scenario_standard(args, opts, deflate=True)
        elif name == "overload":
            runs[name] = scenario_overload(args, opts)
        elif name in ("burst", "idle"):
            if "burst" in runs and name == "idle":
                runs[name] = runs["burst"]  # one connect burst measures both
                show_idle = [{"target": r["target"], "kb": r["idle_kb_per_client"]}
                             for r in runs[name]]
                print(f"\nidle: from the connect burst above: {show_idle}")
            else:
                runs[name] = scenario_connect(args, opts, burst=name == "burst")
        elif name == "workers":
            runs[name] = scenario_workers(args, opts)
        elif name == "sweep":
            runs[name] = scenario_sweep(args, opts, runs.get("standard", []))
        elif name == "tls":
            runs[name] = scenario_tls(args, opts)
        elif name == "market":
            runs[name] = scenario_market(args, opts)
    for line in deflate_costs(runs):
        print(f"  {line}")
    results["elapsed_s"] = round(time.monotonic() - started, 1)
    out = Path(args.out) if args.out else (
        REPO / "bench" / "results" / f"fanout-{time.strftime('%Y%m%d-%H%M%S')}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    print(f"\nresults: {out} ({results['elapsed_s']} s)")
    if args.write_docs:
        write_docs(results, Path(args.write_docs))
    if args.json:
        print(json.dumps(results))
    return results


if __name__ == "__main__":
    main()
