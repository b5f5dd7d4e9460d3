"""Longest modules first. `make test` runs `--dist loadfile --no-loadscope-reorder`: a module's
tests stay in one process and the modules are handed out in collection order, one at a time
as a process becomes free. A long module handed out last keeps one process busy while the
other has nothing left (xdist's own order, by number of tests, put the 47 s soak test and
the cluster tests last). So the modules are ordered by how long their tests took the last
time they ran (setup, call and teardown of each test, kept in pytest's cache folder; a test
not seen yet counts a second). A fresh clone has no cache: there each module's total from
the committed `tests/module_seconds.json` decides (without it the few-test soak and cluster
modules looked shortest and ran last; refresh it with `python tests/support/order.py`
after a full run). Only the order changes: every test still runs, and a module's tests
keep theirs."""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

import pytest

KEY = "holobazaar/test-seconds"
UNKNOWN = 1.0  # s: a test without a recorded time
BASELINE = Path(__file__).resolve().parents[1] / "module_seconds.json"


def module(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def known_seconds(config: pytest.Config) -> dict[str, float]:
    """Each test's last time (nodeid: s); in an xdist worker, the controller's copy, so that
    every worker orders the collection alike."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        return workerinput.get("test_seconds", {})
    cache = getattr(config, "cache", None)
    return cache.get(KEY, {}) if cache is not None else {}


def baseline_seconds() -> dict[str, float]:
    """The committed module totals (module path: s); empty when missing or unreadable."""
    try:
        data = json.loads(BASELINE.read_text())
    except (OSError, ValueError):
        return {}
    return {k: float(v) for k, v in data.items() if isinstance(v, int | float)} \
        if isinstance(data, dict) else {}


def module_totals(seconds: dict[str, float]) -> dict[str, float]:
    totals: dict[str, float] = defaultdict(float)
    for nodeid, s in seconds.items():
        totals[module(nodeid)] += s
    return totals


def longest_modules_first(items: list[pytest.Item], seconds: dict[str, float],
                          baseline: dict[str, float] | None = None) -> None:
    """Sort `items` by their module's total time, longest first (stable: the tests of a
    module stay together and in their order; ties in collection order). A module none of
    whose tests has a recorded time takes its total from `baseline`."""
    baseline = baseline_seconds() if baseline is None else baseline
    totals: dict[str, float] = defaultdict(float)
    recorded = {module(nodeid) for nodeid in seconds}
    for item in items:
        name = module(item.nodeid)
        if name not in recorded and name in baseline:
            totals[name] = baseline[name]
        else:
            totals[name] += seconds.get(item.nodeid, UNKNOWN)
    items.sort(key=lambda item: -totals[module(item.nodeid)])


class Recorder:
    """Collects each test's time from the reports (the controller's, under xdist) and
    merges them into the cache at the end of the session."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    def add(self, report: pytest.TestReport) -> None:
        self.seconds[report.nodeid] += report.duration

    def save(self, config: pytest.Config) -> None:
        cache = getattr(config, "cache", None)
        if cache is None or not self.seconds or hasattr(config, "workerinput"):
            return
        merged = dict(cache.get(KEY, {}))
        merged.update({nodeid: round(s, 3) for nodeid, s in self.seconds.items()})
        cache.set(KEY, merged)


def write_baseline(cache_dir: Path) -> None:
    """Module totals from a cache folder's recorded times into BASELINE (rounded)."""
    path = cache_dir / "v" / "holobazaar" / "test-seconds"
    totals = module_totals(json.loads(path.read_text()))
    BASELINE.write_text(json.dumps({k: round(v, 1) for k, v in sorted(totals.items())},
                                   indent=0) + "\n")
    print(f"{BASELINE}: {len(totals)} modules, {sum(totals.values()):.0f} s in all")


if __name__ == "__main__":  # python tests/support/order.py [.pytest_cache]
    write_baseline(Path(sys.argv[1] if len(sys.argv) > 1 else ".pytest_cache"))
