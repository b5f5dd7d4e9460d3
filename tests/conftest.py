"""Shared fixtures: a real server (uvicorn on a free loopback port, in a thread of the
test process) over a private copy of the demo content and a private data folder. The
helpers themselves live in support.py so test modules can import them by a unique name."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from support import LiveServer, start_server


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    """A fresh server per test (about 0.3 s), on its own copy of the demo content."""
    live = start_server(tmp_path)
    yield live
    live.stop()


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory) -> Iterator[LiveServer]:
    """One server for a whole module, for tests that do not change content."""
    live = start_server(tmp_path_factory.mktemp("shared"))
    yield live
    live.stop()


# Modules whose checks are about timing or load (cue spread in ms, fan-out smoke runs, a
# market-day smoke): `make test` runs them after the parallel run, alone on the machine.
SERIAL_MODULES = frozenset({"test_show_sync.py", "test_sync.py", "test_bench_fanout.py",
                            "test_bench_soak.py", "test_stream_fanout.py"})


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items) -> None:
    """Browser tests last: Playwright's sync API keeps an event loop running in the main
    thread for the session-scoped browser, and the other tests call asyncio.run()."""
    for item in items:
        if item.path.name in SERIAL_MODULES:
            item.add_marker(pytest.mark.serial)
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)
