"""Where one manual price change spends its CPU (issue #26): a live server on loopback
(tests/support/live.py, SQLite, in this process), changes sent one at a time by a client
in a child process (so the client's CPU is not counted), the real route: HTTP PATCH with
an API token -> token lookup -> audit of the token write -> item write + audit entry ->
reconciler -> composing -> diff -> hub publish (no devices follow: this is the cost
*before* fan-out).

Per change it prints the CPU (thread CPU time, not wall time: the machine may be busy)
of each stage, median and p95, in microseconds, nested stages indented under the stage
that calls them, and the server process's CPU per change over the whole run (this adds
uvicorn's HTTP parsing and anything else the process did meanwhile).

    python bench/change_path.py --smoke              # 60 changes, a few seconds
    python bench/change_path.py --changes 2000       # steadier figures
    python bench/change_path.py --cprofile 25        # plus cProfile's top 25 functions
    python bench/change_path.py --cprofile 60 --cprofile-sort cumulative

Figures are CPU time, so they hold on a loaded machine better than wall times do; they
are still higher there (caches, frequency), so compare before/after in the same run
conditions. --json FILE writes the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import functools
import inspect
import io
import json
import pstats
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support.live import start_server

MARKET, SKU = "greenhaven", "HON-COMB"
DISPLAY = "bijenhof-honey"

# (label, owner, attribute, depth): what is wrapped, printed in this order.
STAGES: list[tuple[str, str, str, int]] = [
    ("token lookup", "holobazaar.accounts.service", "principal_for_token", 1),
    ("audit: token write", "holobazaar.accounts.service", "record_write", 1),
    ("item write + audit", "holobazaar.inventory.service", "change_item", 1),
    ("item write + audit (before)", "holobazaar.inventory.service", "update_item", 1),
    ("audit appends (all)", "holobazaar.audit.service", "append", 2),
    ("version read (before only)", "holobazaar.inventory.service", "version_of", 1),
    ("reconcile + publish", "holobazaar.inventory.reconciler:Reconciler", "feed_changed", 1),
    ("compose display (whole)", "holobazaar.scenes.service:SceneService", "compose_display", 2),
    ("recompose (incremental)", "holobazaar.scenes.incremental", "recompose", 2),
    ("hub publish", "holobazaar.stream.hub:Hub", "publish", 2),
    ("diff", "holobazaar.stream.hub", "diff", 3),
    ("binding check", "holobazaar.inventory.reconciler:Reconciler", "check", 2),
]

CLIENT = r"""
import json, sys, httpx
url, token, sku, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
headers = {"Authorization": f"Bearer {token}"}
with httpx.Client(base_url=url, timeout=30) as client:
    for i in range(n):
        price = f"{10 + (i % 2) / 10 + (i % 7) / 100:.2f}"
        r = client.patch(f"/api/v1/markets/greenhaven/items/{sku}", headers=headers,
                         json={"price": price})
        if r.status_code != 200:
            print(r.status_code, r.text, file=sys.stderr)
            sys.exit(1)
"""


class Recorder:
    """CPU per stage per request. Requests are sequential, so a stage's CPU is the calling
    thread's CPU between entering and leaving it (SQLite calls run on the event loop)."""

    def __init__(self) -> None:
        self.current: dict[str, float] = defaultdict(float)
        self.samples: list[dict[str, float]] = []
        self.active = False

    def wrap(self, label: str, function: Any) -> Any:
        recorder = self
        if inspect.iscoroutinefunction(function):
            @functools.wraps(function)
            async def timed_async(*args: Any, **kwargs: Any) -> Any:
                start = time.thread_time()
                try:
                    return await function(*args, **kwargs)
                finally:
                    recorder.current[label] += time.thread_time() - start
            return timed_async

        @functools.wraps(function)
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.thread_time()
            try:
                return function(*args, **kwargs)
            finally:
                recorder.current[label] += time.thread_time() - start
        return timed

    def asgi(self, app: Any) -> Any:
        recorder = self

        async def measured(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] != "http" or scope.get("method") != "PATCH":
                await app(scope, receive, send)
                return
            recorder.current = defaultdict(float)
            start = time.thread_time()
            try:
                await app(scope, receive, send)
            finally:
                recorder.current["request (app, all stages)"] = time.thread_time() - start
                if recorder.active:
                    recorder.samples.append(dict(recorder.current))
        return measured


def install(recorder: Recorder) -> None:
    import importlib

    for label, owner, attribute, _ in STAGES:
        module_name, _, class_name = owner.partition(":")
        try:
            target: Any = importlib.import_module(module_name)
        except ImportError:  # an older tree (bench/change_path.py --tree): not there
            continue
        if class_name:
            target = getattr(target, class_name)
        if not hasattr(target, attribute):
            continue
        setattr(target, attribute, recorder.wrap(label, getattr(target, attribute)))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))] if ordered else 0.0


def run(changes: int, warmup: int, top: int, sort: str = "tottime") -> dict[str, Any]:
    recorder = Recorder()
    install(recorder)
    with tempfile.TemporaryDirectory() as tmp:
        live = start_server(Path(tmp))
        try:
            config = live.server.config
            config.loaded_app = recorder.asgi(config.loaded_app)
            from holobazaar.accounts import service

            token, _ = service.create_token(live.app.state.services.engine, "change-path bench",  # type: ignore[attr-defined]
                                            ["curator"], [MARKET], None, actor="bench")
            client = [sys.executable, "-c", CLIENT, live.url, token, SKU]
            subprocess.run([*client, str(warmup)], check=True, timeout=300)
            profile = cProfile.Profile() if top else None
            if profile is not None:
                async def enable() -> None:
                    profile.enable()
                live.call(enable)
            recorder.active = True
            cpu0, wall0 = time.process_time(), time.monotonic()
            subprocess.run([*client, str(changes)], check=True, timeout=600)
            cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
            recorder.active = False
            if profile is not None:
                async def disable() -> None:
                    profile.disable()
                live.call(disable)
        finally:
            live.stop()
    rows = []
    labels = [("request (app, all stages)", 0)] + [(s[0], s[3]) for s in STAGES]
    for label, depth in labels:
        values = [s.get(label, 0.0) * 1e6 for s in recorder.samples]
        rows.append({"stage": label, "depth": depth,
                     "median_us": round(percentile(values, 50), 1),
                     "p95_us": round(percentile(values, 95), 1),
                     "mean_us": round(sum(values) / len(values), 1) if values else 0.0})
    result: dict[str, Any] = {
        "changes": changes, "process_cpu_us_per_change": round(cpu / changes * 1e6, 1),
        "wall_ms_per_change": round(wall / changes * 1e3, 2), "stages": rows,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "loadavg": Path("/proc/loadavg").read_text().split()[:3]}
    if profile is not None:
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats(sort).print_stats(top)
        result["cprofile"] = out.getvalue()
    return result


def show(result: dict[str, Any]) -> None:
    print(f"manual price change, {result['changes']} changes "
          f"(load average {' '.join(result['loadavg'])}, {result['date']})")
    print(f"{'stage (CPU µs per change)':40} {'median':>9} {'p95':>9} {'mean':>9}")
    for row in result["stages"]:
        name = "  " * row["depth"] + row["stage"]
        print(f"{name:40} {row['median_us']:9.1f} {row['p95_us']:9.1f} {row['mean_us']:9.1f}")
    print(f"server process CPU per change (incl. HTTP parsing): "
          f"{result['process_cpu_us_per_change']:.1f} µs; wall {result['wall_ms_per_change']}"
          " ms per change (client round trip, load-dependent)")
    if "cprofile" in result:
        print(result["cprofile"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="60 changes (tests)")
    parser.add_argument("--changes", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--cprofile", type=int, default=0, metavar="TOP")
    parser.add_argument("--cprofile-sort", default="tottime",
                        choices=["tottime", "cumulative"], help="cProfile's order")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    changes = 60 if args.smoke else args.changes
    warmup = 10 if args.smoke else args.warmup
    result = run(changes, warmup, args.cprofile, args.cprofile_sort)
    show(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    asyncio.set_event_loop_policy(None)
    main()
