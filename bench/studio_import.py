"""Studio file import benchmark: a CSV of N new items (100,000 by default) checked and then
applied through POST /api/v1/markets/{m}/items/import on a live server, as the studio's
inventory page sends it (NDJSON progress); then the inventory page of the grown market.
Prints the body size, the time of each step, the progress lines seen and the process's
resident memory (VmRSS, VmHWM) after each, and - with --tracemalloc - the peak of Python
allocations of the import function alone (slower: run it apart).

    .venv/bin/python bench/studio_import.py [--rows 100000] [--tracemalloc]"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import tracemalloc
from pathlib import Path

import benchlib  # noqa: F401  (puts tests/ on the path)
from holobazaar.inventory import imports
from studio.inventory_content import start

from support.accounts import Accounts, csrf_from


def memory() -> str:
    found = {}
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(("VmRSS", "VmHWM")):
                key, value = line.split(":")
                found[key] = int(value.split()[0]) // 1024
    return f"RSS {found.get('VmRSS')} MB, peak {found.get('VmHWM')} MB"


def csv_body(rows: int) -> bytes:
    return ("sku,name,price,unit,stock,producer\n" + "".join(
        f"BULK-{i:06d},Bulk item {i},{1 + i % 7}.25,kg,{i % 50},hill-farm\n"
        for i in range(rows))).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--tracemalloc", action="store_true")
    args = parser.parse_args()
    live = start(Path(tempfile.mkdtemp(prefix="hb-import-")))
    try:
        body = csv_body(args.rows)
        print(f"{args.rows:,} rows, {len(body) / 1e6:.1f} MB; {memory()}")
        if args.tracemalloc:
            with tempfile.TemporaryFile() as spool:
                spool.write(body)
                size = spool.tell()
                spool.seek(0)
                tracemalloc.start()
                started = time.perf_counter()
                report = imports.apply(live.app.state.services.engine, "alpha", spool, size, "csv",
                                       threshold=50, currency="EUR", confirm=True,
                                       four_eyes=False, actor="bench")
                _, peak = tracemalloc.get_traced_memory()
                tracemalloc.stop()
            print(f"import function alone: applied={report.applied} in "
                  f"{time.perf_counter() - started:.1f} s (traced), Python allocations peak "
                  f"{peak / 1e6:.1f} MB")
            return
        accounts = Accounts(live)
        accounts.user("bench", ["curator"], ["alpha"])
        client = live.client()
        client.timeout = 600
        accounts.login(client, "bench")
        csrf = csrf_from(client.get("/studio/alpha/inventory").text)
        for dry_run in ("true", "false"):
            started = time.perf_counter()
            response = client.post(
                f"/api/v1/markets/alpha/items/import?format=csv&dry_run={dry_run}",
                content=body, headers={"X-CSRF-Token": csrf,
                                       "Accept": "application/x-ndjson"})
            lines = response.text.splitlines()
            last = json.loads(lines[-1])
            step = "check" if dry_run == "true" else "apply"
            print(f"{step}: status {last['status']}, {last['report']['rows']:,} rows, "
                  f"{last['report']['new']:,} new, {len(lines) - 1} progress lines, "
                  f"{time.perf_counter() - started:.1f} s; {memory()}")
        started = time.perf_counter()
        page = client.get("/studio/alpha/inventory")
        print(f"inventory page of {args.rows + 3:,} items: {page.status_code}, "
              f"{len(page.content) / 1e6:.2f} MB, {time.perf_counter() - started:.2f} s")
    finally:
        live.stop()


if __name__ == "__main__":
    main()
