"""Fuzzing fixtures: `holobazaar serve` as its own process (serving.py). Budgets: budget.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fuzz.serving import Served, serve


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[Served]:
    """One `holobazaar serve` per fuzz module (fresh data folder, demo content)."""
    with serve(tmp_path_factory.mktemp("fuzz-serve")) as live:
        yield live
