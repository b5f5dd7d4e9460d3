"""Authoring API (issue #18): a display's scene document read and written over HTTP, under
If-Match, validated by the loader's models, written round-trip."""

from __future__ import annotations

import httpx
import pytest

from support.accounts import Accounts
from support.live import LiveServer

SRC = "/api/v1/markets/alpha/displays/stall/source"


@pytest.fixture
def client(server: LiveServer, accounts: Accounts):
    token = accounts.token(["curator"], ["alpha"])
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"},
                      timeout=10) as c:
        yield c


def stall_file(server: LiveServer):
    return server.content_dir / "scenes" / "alpha" / "displays" / "stall.yaml"


def title_on_stream(client: httpx.Client) -> str:
    return client.get("/api/v1/displays/alpha/stall/state").json()["state"]["display"]["title"]


def test_round_trip_keeps_comments_and_streams(server: LiveServer, client: httpx.Client):
    path = stall_file(server)
    path.write_text("# the stall by the gate\n" + path.read_text().replace(
        "  title: Stall\n", "  title: Stall  # shown on top\n"))
    got = client.get(SRC)
    assert got.status_code == 200
    doc, etag = got.json(), got.headers["etag"]
    assert doc["display"]["title"] == "Stall"
    doc["display"]["title"] = "Apple <b>Stall</b>"
    put = client.put(SRC, json=doc, headers={"If-Match": etag})
    assert put.status_code == 200, put.text
    text = path.read_text()
    assert text.startswith("# the stall by the gate\n")
    assert "title: Apple <b>Stall</b> # shown on top" in text
    assert "    - {id: price, kind: text, item: APL-1, text: \"price\"}" in text  # untouched flow
    assert title_on_stream(client) == "Apple <b>Stall</b>"  # stored as text
    assert client.get(SRC).headers["etag"] == put.headers["etag"]


def test_if_match_required_and_stale_is_a_conflict(server: LiveServer, client: httpx.Client):
    got = client.get(SRC)
    doc, etag = got.json(), got.headers["etag"]
    assert client.put(SRC, json=doc).status_code == 428
    first = dict(doc, display=dict(doc["display"], title="First"))
    assert client.put(SRC, json=first, headers={"If-Match": etag}).status_code == 200
    second = dict(doc, display=dict(doc["display"], title="Second"))
    stale = client.put(SRC, json=second, headers={"If-Match": etag})
    assert stale.status_code == 412
    body = stale.json()["detail"]
    assert body["current"]["display"]["title"] == "First"
    assert body["etag"] == client.get(SRC).headers["etag"]
    assert title_on_stream(client) == "First"


def test_invalid_document_is_422_with_pointers(server: LiveServer, client: httpx.Client):
    got = client.get(SRC)
    doc, etag = got.json(), got.headers["etag"]
    before = stall_file(server).read_bytes()
    bad = dict(doc, display=dict(doc["display"], nodes=[{"id": "x", "kind": "nope"}]))
    answer = client.put(SRC, json=bad, headers={"If-Match": etag})
    assert answer.status_code == 422
    pointers = [e["pointer"] for e in answer.json()["detail"]["errors"]]
    assert any(p.startswith("/display/nodes/0") for p in pointers), pointers
    assert stall_file(server).read_bytes() == before
    assert title_on_stream(client) == "Stall"
    # The loader's cross-file checks too: an item the market does not sell.
    unknown = dict(doc, display=dict(doc["display"], items=["NOPE-1"]))
    answer = client.put(SRC, json=unknown, headers={"If-Match": etag})
    assert answer.status_code == 422
    assert stall_file(server).read_bytes() == before


def test_other_market_curator_and_anonymous_refused(server: LiveServer, accounts: Accounts):
    token = accounts.token(["curator"], ["beta"])
    with httpx.Client(base_url=server.url, timeout=10) as anon:
        assert anon.get(SRC).status_code == 401
        hdr = {"Authorization": f"Bearer {token}", "If-Match": '"x"'}
        assert anon.get(SRC, headers=hdr).status_code == 403
        assert anon.put(SRC, json={}, headers=hdr).status_code == 403
