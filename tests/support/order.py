"""Longest modules first. `make test` runs `--dist loadfile --no-loadscope-reorder`: a module's
tests stay in one process and the modules are handed out in collection order, one at a time
as a process becomes free. A long module handed out last keeps one process busy while the
other has nothing left (xdist's own order, by number of tests, put the 47 s soak test and
the cluster tests last). So the modules are ordered by how long their tests took the last
time they ran (setup, call and teardown of each test, kept in pytest's cache folder; a test
not seen yet counts a second). Only the order changes: every test still runs, and a
module's tests keep theirs."""

from __future__ import annotations

from collections import defaultdict

import pytest

KEY = "holobazaar/test-seconds"
UNKNOWN = 1.0  # s: a test without a recorded time


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


def longest_modules_first(items: list[pytest.Item], seconds: dict[str, float]) -> None:
    """Sort `items` by their module's total time, longest first (stable: the tests of a
    module stay together and in their order; ties in collection order)."""
    totals: dict[str, float] = defaultdict(float)
    for item in items:
        totals[module(item.nodeid)] += seconds.get(item.nodeid, UNKNOWN)
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
