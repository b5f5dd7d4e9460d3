"""Reconcile benchmark: a synthetic market with many SKUs and displays, served by a real
server process. Pushes one signed batch of changes and measures, per affected subscribed
client, when its patch arrives relative to the 2xx response; then times a full sweep and
reports the server's memory growth from loading the inventory.

    python bench/reconcile.py --skus 100000 --displays 2000 --changes 1000 --clients 200
    python bench/reconcile.py --clients 10000 --spread affected    # the #26 goal at 10k
    python bench/reconcile.py --smoke                              # a test (~15 s)

Clients are the Node crowd generator (bench/node/crowd.js), each on up to 32 displays;
every changed price rises from 5.00 by k cents, so a client holds a change once that
SKU's price is at least it: staleness is from the 2xx to each (client, change).

Setup: --displays displays each bind 5 SKUs (seeded from market.yaml); the other SKUs are
pushed through the feed first in batches of 10,000 (with the circuit breaker relaxed for
this bulk load). A benchmark, not a test: it prints figures and stops by itself.

The glitch drill at scale (issue #20, `--drill`): --clients WebSocket clients (the Node
`ws` generator bench/node/drill.js, round robin over the displays) check every state the
server makes them hold against the truth, and heartbeat the hash of what they render.
Each of --rounds rounds pushes a signed batch of --changes legitimate price changes (and
one change big enough to be held) and runs the drill (`POST .../drill`, a third of the
displays scrambled through the hub: the publish guard must catch every one). Then --drift
clients start rendering something else (a fault after the hub, which no guard sees); the
heartbeat hash must get each resynced within one heartbeat interval + 500 ms.

    python bench/reconcile.py --drill --clients 10000 --displays 200     # the #20 goal
    python bench/reconcile.py --drill --quick                           # smoke (a test)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "server"))
sys.path.insert(0, str(REPO / "bench"))
from benchlib import (  # noqa: E402
    Crowd,
    NodeTool,
    die_with_parent,
    monotonic_ms,
    proc_cpu_seconds,
    signed,
    stop,
    wait_ready,
)

from support.net import free_port  # noqa: E402
from support.processes import status_kb  # noqa: E402

MARKET = "benchmarket"
PER_DISPLAY = 5


def write_market(root: Path, displays: int) -> None:
    folder = root / "scenes" / MARKET
    (folder / "displays").mkdir(parents=True)
    lines = ["format: 1", "market: {id: benchmarket, name: Bench Market, currency: EUR}",
             "zones: [{id: hall, name: Hall}]", "items:"]
    # No `unit` (its default is "each"): scene YAML is read up to 100,000 values
    # (scenes/yamlsource.py), and 10,000 items of 4 fields are 90,000 of them.
    for n in range(displays * PER_DISPLAY):
        lines.append(f'  - {{sku: S{n:06d}, name: Item {n}, price: "5.00", stock: 10}}')
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


def measure(url: str, ws_url: str, secret: str, displays: int, changes: int,
            clients: int, seed: int, spread: str, folder: Path, server_pid: int) -> dict:
    """One signed batch of `changes` price changes; `clients` clients of the Node crowd
    generator (bench/node/crowd.js) on the displays (`spread`: all of them round robin, or
    only those the batch changes), each on up to 32 channels. Each changed price is
    `5.00 + k/100` (k in 1..49), so a client's state shows a change when that SKU's price
    is at least it; staleness is from the batch's 2xx to each client holding it."""
    rng = random.Random(seed)
    bound = displays * PER_DISPLAY
    picked = rng.sample(range(bound), min(changes, bound))
    cents = {n: rng.randint(1, 49) for n in picked}
    events = [{"sku": f"S{n:06d}", "price": f"{5 + cents[n] / 100:.2f}",
               "source_version": int(time.time() * 1000)} for n in picked]
    affected = sorted({n // PER_DISPLAY for n in picked})
    watched = affected if spread == "affected" else list(range(displays))
    channels = [f"market/{MARKET}/display/d{d:05d}" for d in watched]
    per_client = max(1, min(32, len(channels) // clients))
    groups = [{"channels": channels[c * per_client:(c + 1) * per_client]
               or [channels[c % len(channels)]], "count": 1} for c in range(clients)]
    crowd = Crowd(ws_url, groups, folder, base=5.0, connect_timeout=600)
    try:
        ready = crowd.ready()
        if ready["ready"] < clients:
            raise SystemExit(f"only {ready['ready']}/{clients} clients got their snapshots")
        body, headers = signed(secret, events)
        cpu0 = proc_cpu_seconds(server_pid)
        sent = monotonic_ms()
        response = httpx.post(f"{url}/api/v1/inventory/{MARKET}/events", content=body,
                              headers=headers, timeout=120)
        acked = monotonic_ms()
        response.raise_for_status()
        # Each change twice: from the 2xx (the goal's measure) and from the request sent.
        result = crowd.finish([{"sku": e["sku"], "seq": cents[n], "t": t, "tag": tag}
                               for n, e in zip(picked, events, strict=True)
                               for t, tag in ((acked, "batch"), (sent, "from-sent"))], 30)
        cpu = proc_cpu_seconds(server_pid) - cpu0
    finally:
        crowd.close()
    return {"result": response.json(), "response_ms": acked - sent, "ready": ready,
            "crowd": result, "server_cpu_s": cpu, "per_client": per_client,
            "affected_displays": len(affected), "watched_displays": len(watched)}


# ---- the glitch drill at scale (--drill) ------------------------------------------------

HELD_NOTICE = "price at the stall"


def facts(price: str | None, notice: str | None = None, status: str = "in_stock",
          stock: int = 10) -> str:
    """An item's shown facts as bench/node/drill.js compares them."""
    return f"{price if price is not None else 'null'}|{notice or 'null'}|{status}|{stock}"


def drill(args: argparse.Namespace) -> dict:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, args.clients + 1024)),
                                                hard))  # inherited by the children
    rng = random.Random(args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="hb-bench-drill-"))
    write_market(tmp, args.displays)
    data = tmp / "var"
    secret = cli(data, "inventory", "secret", "--market", MARKET)
    token = cli(data, "token", "create", "--role", "admin", "--name", "bench").splitlines()[-1]
    headers = {"Authorization": f"Bearer {token}"}
    port = free_port()
    url, ws_url = f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}/ws"
    env = {**os.environ, "HOLOBAZAAR_HEARTBEAT_INTERVAL": str(args.heartbeat),
           "HOLOBAZAAR_RECONCILE_INTERVAL": str(args.sweep_interval)}
    log = (tmp / "server.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "holobazaar", "serve", "--data-dir", str(data), "--content",
         str(tmp), "--port", str(port), "--no-watch", "--log-level", "warning"],
        env=env, stdout=log, stderr=subprocess.STDOUT, preexec_fn=die_with_parent)
    node: NodeTool | None = None
    try:
        wait_ready(url, 120, server)
        skus = [f"S{n:06d}" for n in range(args.displays * PER_DISPLAY)]
        price = dict.fromkeys(skus, "5.00")
        channels = [f"market/{MARKET}/display/d{d:05d}" for d in range(args.displays)]
        (tmp / "channels.json").write_text(json.dumps(channels))
        (tmp / "truth.json").write_text(json.dumps({sku: [facts("5.00")] for sku in skus}))
        node = NodeTool(["node", str(REPO / "bench" / "node" / "drill.js"), "--url", ws_url,
                         "--channels", str(tmp / "channels.json"), "--truth",
                         str(tmp / "truth.json"), "--clients", str(args.clients), "--drift",
                         str(args.drift), "--seed", str(args.seed)])
        node.name = "drill load generator"
        ready = node.expect("ready", 600)
        print(f"{ready['ready']}/{args.clients} clients on {len(channels)} displays in "
              f"{ready['connect_s']:.1f} s")
        if ready["ready"] < args.clients:
            raise SystemExit("not every client got its snapshot")
        load_before = os.getloadavg()
        cpu_before, started = proc_cpu_seconds(server.pid), time.perf_counter()
        held: set[str] = set()
        rounds = []
        with httpx.Client(base_url=url, timeout=120) as http:
            for r in range(args.rounds):
                free = [s for s in skus if s not in held]
                changed = rng.sample(free, min(args.changes + 1, len(free)))
                hold, changed = changed[0], changed[1:]
                events, more = [], {}
                for sku in changed:
                    new = f"{float(price[sku]) * rng.uniform(0.8, 1.2):.2f}"
                    events.append({"sku": sku, "price": new})
                    more[sku] = [facts(new)]
                    price[sku] = new
                # A move of +100% is held: its displays show the notice, never a number.
                events.append({"sku": hold, "price": f"{float(price[hold]) * 2:.2f}"})
                more[hold] = [facts(None, HELD_NOTICE)]
                held.add(hold)
                node.send({"cmd": "truth", "items": more})  # before the change can arrive
                node.expect("truth", 30)
                body, signed_headers = signed(secret, events)
                t0 = time.perf_counter()
                batch = http.post(f"/api/v1/inventory/{MARKET}/events", content=body,
                                  headers=signed_headers)
                batch.raise_for_status()
                batch_ms = (time.perf_counter() - t0) * 1000
                t0 = time.perf_counter()
                response = http.post(f"/api/v1/reconcile/{MARKET}/drill", headers=headers,
                                     json={"seed": args.seed * 1000 + r,
                                           "displays": max(1, args.displays // 3)})
                response.raise_for_status()
                drill_ms = (time.perf_counter() - t0) * 1000
                scrambled = response.json()["scrambled"]
                rounds.append({"changes": len(events), "held": batch.json()["held"],
                               "batch_ms": round(batch_ms, 1), "scrambled": len(scrambled),
                               "guarded": sum(s["guarded"] for s in scrambled),
                               "drill_ms": round(drill_ms, 1)})
                print(f"round {r + 1}: {len(events)} changes ({batch.json()['held']} held) in "
                      f"{batch_ms:.0f} ms; drill scrambled {len(scrambled)} displays, the "
                      f"guard caught {rounds[-1]['guarded']} ({drill_ms:.0f} ms)")
                time.sleep(args.pause)
            window = 2 * args.heartbeat
            node.send({"cmd": "drift", "window_s": window})
            node.expect("drifting", 30)
            time.sleep(window)
            node.send({"cmd": "finish", "drain_s": args.heartbeat + 10})
            result = node.expect("result", 180)
            cpu = proc_cpu_seconds(server.pid) - cpu_before
            elapsed = time.perf_counter() - started
            summary = http.get(f"/api/v1/reconcile/{MARKET}/summary", headers=headers).json()
            guard = guard_figures(http.get("/metrics").text)
        out = {"clients": args.clients, "displays": args.displays, "rounds": rounds,
               "heartbeat_s": args.heartbeat, "sweep_interval_s": args.sweep_interval,
               "scrambled": sum(r["scrambled"] for r in rounds),
               "guarded": sum(r["guarded"] for r in rounds),
               "wrong_delivered": result["wrong_delivered"],
               "wrong_examples": result["wrong_examples"], "drift": result["drift"],
               "final_state_equal": result["final_state_equal"],
               "server_cpu_s": round(cpu, 2), "elapsed_s": round(elapsed, 1),
               "guard": guard, "counts": summary["counts"],
               "loadgen": {k: result[k] for k in ("loadgen_cpu_s", "loadgen_rss_mb")},
               "stats": result["stats"], "error_codes": result["error_codes"],
               "load_avg_before": [round(x, 2) for x in load_before],
               "load_avg_after": [round(x, 2) for x in os.getloadavg()],
               "nproc": os.cpu_count()}
        report(out)
        return out
    finally:
        if node is not None:
            node.close()
        stop(server, 30)
        log.close()


def guard_figures(metrics: str) -> dict:
    """The server's publish guard figures, from its /metrics text (this node's)."""
    from prometheus_client.parser import text_string_to_metric_families

    found: dict = {"per_publish_us": {}, "per_correction_us": {}}
    names = {"50": "p50", "99": "p99", "100": "max"}
    for family in text_string_to_metric_families(metrics):
        for sample in family.samples:
            if sample.name == "holobazaar_reconcile_guard_states_total":
                found[sample.labels["outcome"]] = int(sample.value)
            elif sample.name == "holobazaar_reconcile_guard_items_total":
                found["items_checked"] = int(sample.value)
            elif sample.name == "holobazaar_reconcile_guard_seconds_sum":
                found["seconds_total"] = sample.value
            elif sample.name == "holobazaar_reconcile_guard_check_seconds" and \
                    sample.labels["quantile"] in names:
                kind = ("per_publish_us" if sample.labels["outcome"] == "passed"
                        else "per_correction_us")
                found[kind][names[sample.labels["quantile"]]] = round(sample.value * 1e6, 1)
    for kind in ("per_publish_us", "per_correction_us"):
        for name in names.values():
            found[kind].setdefault(name, None)
    return found


def report(out: dict) -> None:
    drift, guard = out["drift"], out["guard"]
    print(f"wrong states delivered to clients: {out['wrong_delivered']} "
          f"({out['clients']} clients, {out['scrambled']} scrambles, "
          f"{out['guarded']} caught by the guard)")
    for example in out["wrong_examples"]:
        print(f"  wrong: {example}")
    print(f"client drift ({drift['clients']} clients, heartbeat {out['heartbeat_s']:g} s): "
          f"corrected {drift['corrected']}, uncorrected {drift['uncorrected']}; p50 "
          f"{drift['p50_ms']} ms  p90 {drift['p90_ms']} ms  p99 {drift['p99_ms']} ms  max "
          f"{drift['max_ms']} ms (goal: p99 <= {out['heartbeat_s'] * 1000 + 500:.0f} ms)")
    cost, fix = guard["per_publish_us"], guard["per_correction_us"]
    print(f"publish guard: {guard['checked']} display states checked "
          f"({guard['items_checked']} items), {guard['corrected']} corrected, "
          f"{guard['seconds_total'] * 1000:.1f} ms in all; a check that passes: p50 "
          f"{cost['p50']} us  p99 {cost['p99']} us  max {cost['max']} us; one that "
          f"corrects: p50 {fix['p50']} us  p99 {fix['p99']} us  max {fix['max']} us")
    print(f"final states equal to the server's: {out['final_state_equal']}/{out['clients']}; "
          f"server CPU {out['server_cpu_s']} s in {out['elapsed_s']} s; load average "
          f"{out['load_avg_before'][0]} -> {out['load_avg_after'][0]} on {out['nproc']} cores")


def report_batch(out: dict, args: argparse.Namespace) -> dict:
    crowd, ready = out["crowd"], out["ready"]
    batch = crowd["tags"].get("batch", {"samples": 0, "missing": 0, "p50_ms": None,
                                        "p99_ms": None, "max_ms": None})
    affected_clients = sum(r["clients"] for r in crowd["channels"] if r["events"])
    print(f"{ready['ready']} clients on {out['watched_displays']} displays "
          f"({out['per_client']} each; spread: {args.spread}), connected in "
          f"{ready['connect_s']:.1f} s")
    print(f"batch of {args.changes} changes: 2xx after {out['response_ms']:.0f} ms "
          f"(applied {out['result']['applied']}, held {out['result']['held']}); "
          f"{out['affected_displays']} displays changed; server CPU {out['server_cpu_s']:.2f} s "
          f"to the last client")
    print(f"(client, change) pairs: {batch['samples']} held, {batch['missing']} missing; "
          f"{affected_clients} client subscriptions on changed displays; final states "
          f"equal {crowd['final_state_equal']}/{crowd['final_state_compared']}")
    since = crowd["tags"].get("from-sent", {})
    print(f"from the request sent (ms): p50 {since.get('p50_ms')}  p99 {since.get('p99_ms')}  "
          f"max {since.get('max_ms')}")
    met = batch["p99_ms"] is not None and batch["p99_ms"] <= 200 and not batch["missing"]
    print(f"from the 2xx to each affected client holding the change (ms): p50 "
          f"{batch['p50_ms']}  p99 {batch['p99_ms']}  max {batch['max_ms']} "
          f"(goal: p99 <= 200 ms: {'met' if met else 'NOT met'})")
    return {"clients": ready["ready"], "displays": args.displays, "skus": args.skus,
            "changes": args.changes, "spread": args.spread,
            "watched_displays": out["watched_displays"],
            "affected_displays": out["affected_displays"],
            "affected_subscriptions": affected_clients, "connect_s": ready["connect_s"],
            "response_ms": round(out["response_ms"], 1), "applied": out["result"]["applied"],
            "held": out["result"]["held"], "samples": batch["samples"],
            "missing": batch["missing"], "p50_ms": batch["p50_ms"], "p99_ms": batch["p99_ms"],
            "max_ms": batch["max_ms"], "from_sent_p50_ms": since.get("p50_ms"),
            "from_sent_p99_ms": since.get("p99_ms"), "server_cpu_s": round(out["server_cpu_s"], 2),
            "final_state_equal": crowd["final_state_equal"],
            "final_state_compared": crowd["final_state_compared"],
            "loadgen_cpu_s": crowd["loadgen_cpu_s"], "loadgen_stats": crowd["stats"],
            "error_codes": crowd["error_codes"]}


def plot_batches(runs: list[Path], path: Path) -> None:
    """Runs written by --out side by side: p50/p99 from the 2xx and from the request sent,
    with the 200 ms goal (`--plot OUT.png RUN.json ...`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(run.read_text()) for run in runs]
    labels = [f"{r['clients']:,} clients\n{r['spread']} ({r['affected_subscriptions']:,} "
              f"affected)\nload {r['load_avg'][0]:.0f}" for r in rows]
    bars = [("p50_ms", "p50 from the 2xx", "tab:green"), ("p99_ms", "p99 from the 2xx",
                                                           "darkgreen"),
            ("from_sent_p50_ms", "p50 from sent", "tab:blue"),
            ("from_sent_p99_ms", "p99 from sent", "navy")]
    fig, ax = plt.subplots(figsize=(8, 4.2), dpi=120)
    width = 0.8 / len(bars)
    for i, (key, label, color) in enumerate(bars):
        ax.bar([x + (i - 1.5) * width for x in range(len(rows))],
               [float("nan") if r.get(key) is None else r[key] for r in rows], width,
               label=label, color=color)
    ax.axhline(200, color="tab:red", linestyle="--", label="goal: 200 ms from the 2xx")
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_xticks(list(range(len(rows))), labels, fontsize=8)
    ax.set_ylabel("client holds the change (ms; < 0: before the 2xx)")
    ax.set_title(f"Feed batch: {rows[0]['changes']:,} changes, {rows[0]['skus']:,} SKUs, "
                 f"{rows[0]['displays']:,} displays")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    print(f"plot: {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skus", type=int, default=100_000)
    parser.add_argument("--displays", type=int)
    parser.add_argument("--changes", type=int)
    parser.add_argument("--clients", type=int)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--spread", choices=("all", "affected"), default="all",
                        help="clients on every display round robin, or only on the displays "
                        "the batch changes [all]")
    parser.add_argument("--smoke", action="store_true",
                        help="small and fast (a test): 1,000 SKUs, 20 displays, 50 changes, "
                        "60 clients; the batch only (no sweeps)")
    drilling = parser.add_argument_group("the glitch drill (--drill)")
    drilling.add_argument("--drill", action="store_true",
                          help="the drill at scale: wrong prices delivered, drift correction")
    drilling.add_argument("--quick", action="store_true",
                          help="with --drill: a smoke run (60 clients, 12 displays, 2 rounds)")
    drilling.add_argument("--rounds", type=int, help="drill rounds [5]")
    drilling.add_argument("--drift", type=int, help="clients that drift [a tenth]")
    drilling.add_argument("--heartbeat", type=float, help="heartbeat interval, s [5]")
    drilling.add_argument("--sweep-interval", type=float, default=3600.0,
                          help="full sweep interval, s [3600: the guard alone]")
    drilling.add_argument("--pause", type=float, default=0.5, help="between rounds, s")
    parser.add_argument("--out", type=Path, help="write the figures as JSON")
    parser.add_argument("--plot", nargs="+", metavar=("OUT.png", "RUN.json"),
                        help="plot runs written by --out (no benchmark)")
    args = parser.parse_args()
    if args.plot:
        plot_batches([Path(p) for p in args.plot[1:]], Path(args.plot[0]))
        return
    if args.drill:
        quick = args.quick
        args.clients = args.clients or (60 if quick else 10_000)
        args.displays = args.displays or (12 if quick else 200)
        args.changes = args.changes or (10 if quick else 100)
        args.rounds = args.rounds or (2 if quick else 5)
        args.drift = args.drift if args.drift is not None else max(1, args.clients // 10)
        args.heartbeat = args.heartbeat or (1.0 if quick else 5.0)
        out = drill(args)
        if args.out:
            args.out.write_text(json.dumps(out, indent=2))
        return
    if args.smoke:
        args.skus = min(args.skus, 1000)
    args.displays = args.displays or (20 if args.smoke else 2000)
    args.changes = args.changes or (50 if args.smoke else 1000)
    args.clients = args.clients or (60 if args.smoke else 200)
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, args.clients + 1024)),
                                                hard))  # inherited by the server
    tmp = Path(tempfile.mkdtemp(prefix="hb-bench-reconcile-"))
    write_market(tmp, args.displays)
    data = tmp / "var"
    secret = cli(data, "inventory", "secret", "--market", MARKET)
    token = "" if args.smoke else cli(  # the sweeps' (the smoke measures the batch only)
        data, "token", "create", "--role", "admin", "--name", "bench").splitlines()[-1]
    port = free_port()
    env = {**os.environ, "HOLOBAZAAR_BREAKER_SHARE": "1", "HOLOBAZAAR_RECONCILE_INTERVAL":
           "3600", "HOLOBAZAAR_MAX_SUBSCRIPTIONS": "32"}
    started = time.perf_counter()
    load_at_start = [round(x, 2) for x in os.getloadavg()]
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
        rss_before = status_kb(server.pid)
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
        rss_after = status_kb(server.pid)
        print(f"bulk load: {len(extra)} SKUs pushed in {bulk:.1f} s; server RSS "
              f"{rss_before / 1024:.0f} -> {rss_after / 1024:.0f} MB")
        out = measure(url, ws_url, secret, args.displays, args.changes, args.clients,
                      args.seed, args.spread, tmp, server.pid)
        figures = report_batch(out, args)
        if args.out:
            args.out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                            "load_avg": load_at_start, **figures}, indent=1))
        if args.smoke:
            return
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
        print(f"server RSS now {status_kb(server.pid) / 1024:.0f} MB")
    finally:
        server.terminate()
        server.wait(30)


if __name__ == "__main__":
    main()
