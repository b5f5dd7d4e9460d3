"""Fixtures of a real server over the two-market stall content (alpha, beta: so
cross-market requests can be tried) and accounts in its database. A conftest imports them
(tests/accounts, tests/studio) rather than defining its own copy."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from support.accounts import Accounts
from support.live import LiveServer, start_server
from support.markets import write_stall_markets


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator:
    """Start a server over the two-market content with setting overrides."""
    started: list[LiveServer] = []

    def start(**overrides) -> LiveServer:
        root = tmp_path / f"s{len(started)}"
        live = start_server(root, content_dir=write_stall_markets(root / "content"),
                            watch=False, **overrides)
        started.append(live)
        return live

    yield start
    for live in started:
        live.stop()


@pytest.fixture
def server(make_server) -> LiveServer:
    return make_server()


@pytest.fixture
def accounts(server: LiveServer) -> Accounts:
    return Accounts(server)
