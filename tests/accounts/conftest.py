"""Accounts fixtures: a small two-market content folder (so cross-market writes can be
tried), a real server over it, and helpers that create users and tokens in its database."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from holobazaar.accounts import service

from support.live import LiveServer, start_server
from support.markets import write_stall_markets

PASSWORD = "correct horse battery"

class Accounts:
    """Creates users and tokens directly in a live server's database."""

    def __init__(self, live: LiveServer) -> None:
        self.live = live
        self.engine = live.app.state.engine  # type: ignore[attr-defined]

    def user(self, name: str, roles: list[str], markets: list[str],
             password: str = PASSWORD) -> str:
        service.create_user(self.engine, name, password, roles, markets, actor="test")
        return name

    def token(self, roles: list[str], markets: list[str], name: str | None = None,
              expires: timedelta | None = None) -> str:
        name = name or f"t{len(service.list_tokens(self.engine))}-{'-'.join(roles)}"
        token, _ = service.create_token(self.engine, name, roles, markets, expires,
                                        actor="test")
        return token

    def login(self, client: httpx.Client, name: str, password: str = PASSWORD,
              next_url: str = "/home") -> httpx.Response:
        page = client.get("/login")
        csrf = csrf_from(page.text)
        return client.post("/login", data={"username": name, "password": password,
                                           "csrf": csrf, "next": next_url})


def csrf_from(html: str) -> str:
    match = re.search(r'name="(?:csrf|csrf-token)" (?:value|content)="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator:
    """Start a server over the two-market content with setting overrides."""
    started: list[LiveServer] = []

    def start(**overrides) -> LiveServer:
        root = tmp_path / f"s{len(started)}"
        live = start_server(root, content_dir=write_stall_markets(root / "content"), watch=False,
                            **overrides)
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
