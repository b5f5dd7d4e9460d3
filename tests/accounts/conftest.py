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

from support import LiveServer, start_server

PASSWORD = "correct horse battery"

MARKET = """\
format: 1
market: {{id: {m}, name: Market {m}, currency: EUR}}
zones: [{{id: hall, name: Hall}}]
items:
  - {{sku: APL-1, name: Apples, price: "2.50", unit: kg, stock: 10}}
"""
DISPLAY = """\
format: 1
display:
  id: stall
  zone: hall
  title: Stall
  items: [APL-1]
  nodes:
    - {id: price, kind: text, item: APL-1, text: "price"}
"""


def write_content(root: Path, markets: tuple[str, ...] = ("alpha", "beta")) -> Path:
    for m in markets:
        folder = root / "scenes" / m / "displays"
        folder.mkdir(parents=True, exist_ok=True)
        (folder.parent / "market.yaml").write_text(MARKET.format(m=m))
        (folder / "stall.yaml").write_text(DISPLAY)
    (root / "assets").mkdir(exist_ok=True)
    return root


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
        live = start_server(root, content_dir=write_content(root / "content"), watch=False,
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
