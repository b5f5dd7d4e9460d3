"""Modules are handed out longest first (tests/support/order.py): by the last run's times
when the cache has them, by the committed baseline on a fresh clone."""

from __future__ import annotations

from types import SimpleNamespace

from support.order import longest_modules_first


def _items(*nodeids: str) -> list:
    return [SimpleNamespace(nodeid=n) for n in nodeids]


def test_a_fresh_clone_orders_by_the_baseline() -> None:
    items = _items("a.py::t1", "a.py::t2", "a.py::t3", "soak.py::t1")
    longest_modules_first(items, {}, {"a.py": 3.0, "soak.py": 47.0})
    assert [i.nodeid for i in items] == ["soak.py::t1", "a.py::t1", "a.py::t2", "a.py::t3"]


def test_recorded_times_win_over_the_baseline_and_unknown_tests_count_a_second() -> None:
    items = _items("a.py::t1", "soak.py::t1", "new.py::t1", "new.py::t2")
    longest_modules_first(items, {"a.py::t1": 60.0, "soak.py::t1": 5.0},
                          {"soak.py": 47.0, "a.py": 1.0})
    assert [i.nodeid for i in items] == ["a.py::t1", "soak.py::t1", "new.py::t1", "new.py::t2"]
