"""The market scenario of bench/fanout.py (`--scenarios market`, issue #26): a generated
market with many channels, each with its own crowd, changing at once.

- --displays displays (20) in 4 zones, --clients clients (500) on each display; each
  client also joins its display's zone channel (a zone's crowd: its displays' clients);
  a separate crowd of --clients on the pulse channel;
- items bound into several displays: each display shows 12 items of a pool of bound
  items, every pooled item on 3 displays; the market has 1,000 SKUs in all;
- manual changes (`PATCH` with a curator token, --rate per second, on half of the pool)
  and signed feed batches (every 2 s, 100 changes: a quarter on the other half of the
  pool, the rest on SKUs no display shows);
- a show per zone: 5 cues 0.4 s apart (auto-follow), GO again when it is over;
- reactions (50/s, from display clients) feeding the pulse channel (published each 1 s).

Staleness (bench/node/crowd.js): a change from its 2xx, a cue from its fire instant
(`start_time - lead` on the server clock), a pulse publish from the first client's
receipt, to each client holding it. Per channel p50/p99/max; starvation: the largest
channel p99 over the smallest (each at least 1 ms: a p99 before the 2xx counts as 1 ms).
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from benchlib import Crowd, monotonic_ms, percentile, signed

MARKET = "benchbazaar"
ZONES = 4
PER_DISPLAY = 12
SHARE = 3  # displays each pooled item is on
SKUS = 1000
PRICE_BASE = 1000
FEED_EVERY_S, FEED_CHANGES, FEED_BOUND = 2.0, 100, 25
CUES, CUE_S = 5, 0.4
REACTIONS_PER_S = 50
GOAL_MS = 250.0


def sku(n: int) -> str:
    return f"M{n:05d}"


def price(seq: int) -> str:
    return f"{PRICE_BASE + seq / 100:.2f}"


class Layout:
    def __init__(self, displays: int) -> None:
        self.displays = [f"d{d:03d}" for d in range(displays)]
        self.pool = max(PER_DISPLAY + 1, displays * PER_DISPLAY // SHARE)
        self.zone = {d: f"z{i * ZONES // displays}" for i, d in enumerate(self.displays)}
        self.items = {d: [sku((i * PER_DISPLAY + k) % self.pool) for k in range(PER_DISPLAY)]
                      for i, d in enumerate(self.displays)}
        self.manual = [sku(n) for n in range(0, self.pool, 2)]
        self.feed_bound = [sku(n) for n in range(1, self.pool, 2)]
        self.unbound = [sku(n) for n in range(self.pool, max(SKUS, self.pool + FEED_CHANGES))]
        self.zones = sorted(set(self.zone.values()))

    def channel(self, kind: str, name: str = "") -> str:
        return f"market/{MARKET}/{kind}/{name}" if name else f"market/{MARKET}/{kind}"


def write_content(root: Path, layout: Layout) -> None:
    folder = root / "scenes" / MARKET
    (folder / "displays").mkdir(parents=True)
    (folder / "shows").mkdir()
    zones = ", ".join(f"{{id: {z}, name: Zone {z}}}" for z in layout.zones)
    lines = ["format: 1", f"market: {{id: {MARKET}, name: Bench Bazaar, currency: EUR}}",
             f"zones: [{zones}]", "items:"]
    lines += [f'  - {{sku: {sku(n)}, name: Item {n}, price: "{price(0)}", unit: each, '
              f"stock: 10}}" for n in range(layout.pool + len(layout.unbound))]
    (folder / "market.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    for display in layout.displays:
        nodes = "\n".join(
            f'    - {{id: p{i}, kind: text, item: {s}, text: "{{{{ item.name }}}} '
            f'{{{{ item.price }}}}"}}' for i, s in enumerate(layout.items[display]))
        (folder / "displays" / f"{display}.yaml").write_text(
            f"format: 1\ndisplay:\n  id: {display}\n  zone: {layout.zone[display]}\n"
            f"  title: Stall {display}\n  items: [{', '.join(layout.items[display])}]\n"
            f"  nodes:\n{nodes}\n", encoding="utf-8")
    for zone in layout.zones:
        cues = []
        for n in range(1, CUES + 1):
            last = n == CUES
            cues.append(f'    - number: "{n}"\n      name: Beat {n}\n      duration: {CUE_S}\n'
                        f"      continue: {'none' if last else 'auto-follow'}\n"
                        + ('      next: "1"\n' if last else "")
                        + f'      actions: [{{kind: overlay, title: "Beat {n}", '
                        f'text: "Zone {zone}"}}]')
        (folder / "shows" / f"show-{zone}.yaml").write_text(
            f"version: 1\nshow:\n  id: show-{zone}\n  title: Show {zone}\n  zone: {zone}\n"
            "  cues:\n" + "\n".join(cues) + "\n", encoding="utf-8")


def crowd_groups(layout: Layout, clients: int) -> list[dict]:
    groups = [{"channels": [layout.channel("display", d), layout.channel("zone", layout.zone[d])],
               "count": clients, "market": MARKET, "display": d} for d in layout.displays]
    groups.append({"channels": [layout.channel("pulse")], "count": clients})
    return groups


async def drive(url: str, headers: dict, secret: str, layout: Layout, seconds: float,
                rate: float, feed_every: float = FEED_EVERY_S) -> tuple[list[dict], dict]:
    """Manual changes, feed batches and show GOs for `seconds`; returns the changes (with
    their 2xx instants) and counts."""
    changes: list[dict] = []
    counts = {"manual": 0, "feed_batches": 0, "feed_changes": 0, "gos": 0, "failures": 0,
              "manual_ms": [], "feed_ms": []}
    seq = 0
    locks = {s: asyncio.Lock() for s in layout.manual}
    end = time.monotonic() + seconds

    def next_seq() -> int:
        nonlocal seq
        seq += 1
        return seq

    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as http:

        async def manual(s: str) -> None:
            async with locks[s]:  # one SKU's changes in order: its prices only go up
                n = next_seq()
                t0 = monotonic_ms()
                response = await http.patch(f"/api/v1/markets/{MARKET}/items/{s}",
                                            json={"price": price(n), "confirm": True})
                t = monotonic_ms()
            if response.status_code >= 300:
                counts["failures"] += 1
                return
            counts["manual"] += 1
            counts["manual_ms"].append(t - t0)
            changes.append({"sku": s, "seq": n, "t": t, "tag": "manual"})

        async def manual_loop() -> None:
            tasks, k, start = [], 0, time.monotonic()
            while time.monotonic() < end:
                await asyncio.sleep(max(0.0, start + k / rate - time.monotonic()))
                tasks.append(asyncio.create_task(manual(layout.manual[k % len(layout.manual)])))
                k += 1
            await asyncio.gather(*tasks)

        async def feed_loop() -> None:
            k = 0
            while feed_every > 0 and time.monotonic() < end:
                started = time.monotonic()
                bound = [layout.feed_bound[(k * FEED_BOUND + i) % len(layout.feed_bound)]
                         for i in range(min(FEED_BOUND, len(layout.feed_bound)))]
                others = [layout.unbound[(k * FEED_CHANGES + i) % len(layout.unbound)]
                          for i in range(FEED_CHANGES - len(bound))]
                picked = [(s, next_seq()) for s in bound + others]
                events = [{"sku": s, "price": price(n), "source_version": int(time.time() * 1e6)}
                          for s, n in picked]
                body, signed_headers = signed(secret, events)
                t0 = monotonic_ms()
                response = await http.post(f"/api/v1/inventory/{MARKET}/events", content=body,
                                           headers=signed_headers)
                t = monotonic_ms()
                if response.status_code >= 300:
                    counts["failures"] += 1
                else:
                    counts["feed_batches"] += 1
                    counts["feed_changes"] += len(events)
                    counts["feed_ms"].append(t - t0)
                    changes.extend({"sku": s, "seq": n, "t": t, "tag": "feed"} for s, n in picked)
                k += 1
                await asyncio.sleep(max(0.0, started + feed_every - time.monotonic()))

        async def show_loop(zone: str, delay: float) -> None:
            await asyncio.sleep(delay)
            while time.monotonic() < end:
                started = time.monotonic()
                response = await http.post(f"/api/v1/shows/{MARKET}/show-{zone}/go")
                if response.status_code >= 300:
                    counts["failures"] += 1
                    print(f"  GO show-{zone}: {response.status_code} {response.text[:200]}")
                else:
                    counts["gos"] += 1
                await asyncio.sleep(max(0.0, started + CUES * CUE_S + 0.3 - time.monotonic()))

        await asyncio.gather(manual_loop(), feed_loop(),
                             *(show_loop(z, 0.1 * i) for i, z in enumerate(layout.zones)))
    return changes, counts


def cli(data: Path, *commands: list[str]) -> list[str]:
    """The last line each `holobazaar` command prints, the commands run at once."""
    from support.processes import holobazaar_command

    running = [subprocess.Popen([holobazaar_command(), *args, "--data-dir", str(data)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for args in commands]
    lines = []
    for process, args in zip(running, commands, strict=True):
        out, _ = process.communicate(timeout=120)
        if process.returncode:
            raise SystemExit(f"holobazaar {' '.join(args)}: exit {process.returncode}")
        lines.append(out.strip().splitlines()[-1])
    return lines


def run(server_factory: Any, *, displays: int, clients: int, seconds: float, rate: float,
        drain: float, loadgen_cpus: str | None, connect_timeout: float,
        cpu_seconds: Any, lead_ms: float = 150.0,
        feed_every: float = FEED_EVERY_S) -> dict[str, Any]:
    """One run on Holobazaar: `server_factory(content, env)` gives a started-on-.start()
    server object with .url, .tmp (its data dir), .process, .stop() (bench/fanout.py's
    Holobazaar)."""
    layout = Layout(displays)
    content = Path(tempfile.mkdtemp(prefix="holobazaar-market-"))
    write_content(content, layout)
    server = server_factory(content, {"HOLOBAZAAR_SHOW_LEAD_MS": str(lead_ms),
                                      "HOLOBAZAAR_BREAKER_SHARE": "1"})
    crowd = None
    try:
        ws_url = server.start()
        token, secret = cli(server.tmp, ["token", "create", "--role", "admin", "--name",
                                         "market bench"],
                            ["inventory", "secret", "--market", MARKET])
        crowd = Crowd(ws_url, crowd_groups(layout, clients), content, base=PRICE_BASE,
                      first_arrival=(layout.channel("pulse"),), lead_ms=lead_ms,
                      cpus=loadgen_cpus, connect_timeout=connect_timeout)
        ready = crowd.ready()
        if ready["ready"] < ready["clients"]:
            raise SystemExit(f"market: only {ready['ready']}/{ready['clients']} clients ready")
        pid = server.process.pid
        cpu0, gen0 = cpu_seconds(pid), crowd.cpu_seconds()
        # Each device reacts at most every 2 s (the server allows 1/s per device).
        crowd.send({"cmd": "react", "rate": min(REACTIONS_PER_S, displays * clients / 2)})
        changes, counts = asyncio.run(drive(server.url, {"Authorization": f"Bearer {token}"},
                                            secret, layout, seconds, rate, feed_every))
        result = crowd.finish(changes, drain)
        server_cpu, gen_cpu = cpu_seconds(pid) - cpu0, crowd.cpu_seconds() - gen0
    finally:
        server.stop()
        if crowd is not None:
            crowd.close()
        shutil.rmtree(content, ignore_errors=True)
    return summarize(result, ready, counts, layout, clients, seconds, rate, server_cpu,
                     gen_cpu)


def kind_of(channel: str) -> str:
    return channel.split("/")[2]


def summarize(result: dict, ready: dict, counts: dict, layout: Layout, clients: int,
              seconds: float, rate: float, server_cpu: float, gen_cpu: float) -> dict:
    rows = result["channels"]
    measured = [r for r in rows if r["samples"]]
    p99s = [r["p99_ms"] for r in measured]
    # Starvation among the channels measured from their origin (a change's 2xx, a cue's
    # fire): the pulse channel's figure starts at the first receipt, so it is smaller.
    origin = [r["p99_ms"] for r in measured if kind_of(r["channel"]) != "pulse"]
    kinds: dict[str, dict] = {}
    for kind in ("display", "zone", "pulse"):
        mine = [r for r in measured if kind_of(r["channel"]) == kind]
        if mine:
            worst = max(mine, key=lambda r: r["p99_ms"])
            kinds[kind] = {"channels": len(mine), "p99_max_ms": worst["p99_ms"],
                           "p99_min_ms": min(r["p99_ms"] for r in mine),
                           "worst": worst["channel"], "samples": sum(r["samples"] for r in mine),
                           "missing": sum(r["missing"] for r in mine),
                           "events": sum(r["events"] for r in mine)}
    return {
        "target": "holobazaar", "displays": len(layout.displays), "zones": len(layout.zones),
        "clients_per_display": clients, "clients": result["clients"],
        "subscriptions": ready["subscriptions"], "connect_s": ready["connect_s"],
        "seconds": seconds, "rate": rate, "manual_changes": counts["manual"],
        "feed_batches": counts["feed_batches"], "feed_changes": counts["feed_changes"],
        "gos": counts["gos"], "request_failures": counts["failures"],
        "manual_2xx_p50_ms": round(percentile(counts["manual_ms"], 50), 1),
        "feed_2xx_p50_ms": (round(percentile(counts["feed_ms"], 50), 1) if counts["feed_ms"]
                            else None),
        "changes_on_no_channel": result["changes_on_no_channel"],
        "channels": rows, "tags": result["tags"], "kinds": kinds, "all": result["all"],
        "p99_max_ms": max(p99s) if p99s else None, "p99_min_ms": min(p99s) if p99s else None,
        # A channel whose clients held every change before its 2xx (a feed batch's
        # displays go out while the batch is handled) counts as 1 ms, not as a ratio of 0.
        "starvation_ratio": (round(max(max(origin), 1.0) / max(min(origin), 1.0), 2)
                             if origin else None),
        "missing": result["all"]["missing"],
        "final_state_equal": result["final_state_equal"],
        "final_state_compared": result["final_state_compared"],
        "goal_met": bool(p99s) and max(p99s) <= GOAL_MS and result["all"]["missing"] == 0,
        "server_cpu_s": round(server_cpu, 2), "loadgen_cpu_s": round(gen_cpu, 2),
        "loadgen_stats": result["stats"], "error_codes": result["error_codes"],
    }


def show(row: dict) -> None:
    print(f"\nmarket: {row['displays']} displays x {row['clients_per_display']} clients, "
          f"{row['zones']} zones, pulse crowd {row['clients_per_display']}; {row['clients']} "
          f"connections, {row['subscriptions']} subscriptions (connected in "
          f"{row['connect_s']:.1f} s); {row['seconds']:g} s: {row['manual_changes']} manual "
          f"changes, {row['feed_batches']} feed batches ({row['feed_changes']} changes), "
          f"{row['gos']} GOs, {row['request_failures']} failed requests")
    print(f"  2xx p50: manual {row['manual_2xx_p50_ms']} ms, feed batch "
          f"{row['feed_2xx_p50_ms']} ms; server CPU {row['server_cpu_s']} s, load generator "
          f"{row['loadgen_cpu_s']} s")
    print(f"  {'channel':<34} {'clients':>7} {'events':>6} {'samples':>8} {'missing':>7} "
          f"{'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for r in row["channels"]:
        print(f"  {r['channel']:<34} {r['clients']:>7} {r['events']:>6} {r['samples']:>8} "
              f"{r['missing']:>7} {r['p50_ms']!s:>8} {r['p99_ms']!s:>8} {r['max_ms']!s:>8}")
    for tag, t in row["tags"].items():
        print(f"  by source {tag:<14} events {t['events']:>5}  samples {t['samples']:>8}  "
              f"missing {t['missing']}  p50 {t['p50_ms']} ms  p99 {t['p99_ms']} ms  max "
              f"{t['max_ms']} ms")
    print(f"  worst channel p99 {row['p99_max_ms']} ms, best {row['p99_min_ms']} ms; "
          f"starvation (largest / smallest p99 of the display and zone channels) "
          f"{row['starvation_ratio']}; final states equal "
          f"{row['final_state_equal']}/{row['final_state_compared']}; goal (p99 <= "
          f"{GOAL_MS:.0f} ms on every channel, none missing): "
          f"{'met' if row['goal_met'] else 'NOT met'}")


def plot(row: dict, path: Path) -> None:
    """Per channel p50/p99 bars (one run), the 250 ms goal as a line."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("  plot: matplotlib is missing (pip install -e '.[bench]' or make bench)")
        return
    from matplotlib.patches import Patch

    colors = {"display": "tab:green", "zone": "tab:orange", "pulse": "tab:purple"}
    rows = sorted((r for r in row["channels"] if r["samples"]),
                  key=lambda r: (list(colors).index(kind_of(r["channel"])), r["channel"]))
    labels = [r["channel"].split("/", 2)[2] for r in rows]
    fig, ax = plt.subplots(figsize=(9, 4.2), dpi=120)
    xs = range(len(rows))
    ax.bar(xs, [r["p99_ms"] for r in rows], color=[colors[kind_of(r["channel"])] for r in rows])
    ax.plot(xs, [r["p50_ms"] for r in rows], "k.", label="p50")
    ax.axhline(GOAL_MS, color="tab:red", linestyle="--", label=f"goal {GOAL_MS:.0f} ms")
    ax.set_xticks(list(xs), labels, rotation=70, fontsize=7)
    ax.set_ylabel("staleness (ms)")
    ax.set_title(f"Market: {row['displays']} displays x {row['clients_per_display']} clients, "
                 f"{row['zones']} zones, pulse; staleness per channel")
    handles, _ = ax.get_legend_handles_labels()
    ax.legend(handles=[*handles, *(Patch(color=c, label=f"p99, {k} channels")
                                   for k, c in colors.items())], fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    print(f"  plot: {path}")


if __name__ == "__main__":
    # Plot a run again from its JSON: python bench/market_scenario.py RESULTS.json OUT.png
    import json
    import sys

    (market_row,) = json.loads(Path(sys.argv[1]).read_text())["scenarios"]["market"]
    plot(market_row, Path(sys.argv[2]))
