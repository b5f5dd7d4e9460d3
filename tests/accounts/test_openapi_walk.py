"""Every write route in the OpenAPI document refuses an anonymous caller with 401/403,
before looking at the body or whether the target exists."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from holobazaar.config import Settings
from holobazaar.web.app import create_app

from support.live import LiveServer, start_server
from support.markets import write_stall_markets

WRITE_METHODS = {"post", "put", "patch", "delete"}
# Writes the public may make by design (each with its own limits, tested where it lives):
# community submissions land in a moderation queue, rate-limited (tests/stories).
PUBLIC_WRITES = {("POST", "/api/v1/submissions")}


DOC = create_app(Settings(watch=False)).openapi()


def write_routes() -> list[tuple[str, str]]:
    return sorted((method.upper(), path) for path, item in DOC["paths"].items()
                  for method in item if method in WRITE_METHODS
                  and (method.upper(), path) not in PUBLIC_WRITES)


def concrete(path: str) -> str:
    # Real market ids where a market is asked for, so scoping is exercised too.
    path = path.replace("{market}", "alpha")
    return re.sub(r"\{[^}]+\}", "x", path)


ROUTES = write_routes()


def test_the_walk_covers_the_known_write_routes():
    assert ("PATCH", "/api/v1/markets/{market}/items/{sku}") in ROUTES


@pytest.fixture(scope="module")
def walk_server(tmp_path_factory) -> Iterator[LiveServer]:
    """One server for the whole walk: an anonymous write is refused before it changes
    anything (a server per request made this module a fifth of the suite's time)."""
    root = tmp_path_factory.mktemp("walk")
    live = start_server(root, content_dir=write_stall_markets(root / "content"), watch=False)
    yield live
    live.stop()


@pytest.mark.parametrize(("method", "path"), ROUTES)
@pytest.mark.parametrize("body", [None, b"{}", b"{not json"])
def test_anonymous_write_is_refused(walk_server, method, path, body):
    server = walk_server
    headers = {"content-type": "application/json"} if body is not None else {}
    with server.client() as c:
        r = c.request(method, concrete(path), content=body, headers=headers)
    assert r.status_code in (401, 403), (method, path, r.status_code, r.text)
    assert r.json()["detail"] in ("authentication required", "forbidden")


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_write_routes_declare_a_security_scheme(method, path):
    assert DOC["paths"][path][method.lower()].get("security"), (method, path)
