"""Fuzzing fixtures: `holobazaar serve` as its own process (support/processes.py), its log
read for tracebacks. Budgets: budget.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from support.processes import ServeProcess, serve


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[ServeProcess]:
    """One `holobazaar serve` per fuzz module (fresh data folder, demo content)."""
    with serve(tmp_path_factory.mktemp("fuzz-serve"), "--log-level", "warning") as live:
        yield live
