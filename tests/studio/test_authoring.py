"""Authoring API (issue #18): a display's scene document read and written over HTTP, under
If-Match, validated by the loader's models, written round-trip."""

from __future__ import annotations

import json

import httpx
import pytest
from websockets.sync.client import connect

from support.accounts import Accounts, csrf_from
from support.live import LiveServer

SRC = "/api/v1/markets/alpha/displays/stall/source"


@pytest.fixture
def client(server: LiveServer, accounts: Accounts):
    token = accounts.token(["curator"], ["alpha"])
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"},
                      timeout=10) as c:
        yield c


def hello(ws, channels: list[str], token: str) -> list[dict]:
    """Join channels with a token; one reply (snapshot or error) per channel."""
    assert json.loads(ws.recv(timeout=5))["type"] == "welcome"
    ws.send(json.dumps({"type": "hello", "protocol": 1, "token": token,
                        "subscribe": [{"channel": c} for c in channels]}))
    return [json.loads(ws.recv(timeout=5)) for _ in channels]


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
    assert answer.json()["detail"]["errors"][0]["pointer"].startswith("/display/items"), \
        answer.text
    assert stall_file(server).read_bytes() == before


def test_other_market_curator_and_anonymous_refused(server: LiveServer, accounts: Accounts):
    token = accounts.token(["curator"], ["beta"])
    with httpx.Client(base_url=server.url, timeout=10) as anon:
        assert anon.get(SRC).status_code == 401
        hdr = {"Authorization": f"Bearer {token}", "If-Match": '"x"'}
        assert anon.get(SRC, headers=hdr).status_code == 403
        base = "/api/v1/markets/alpha/displays"
        for method, url in [("GET", SRC), ("PUT", SRC), ("DELETE", SRC),
                            ("POST", base), ("POST", f"{base}/stall/preview"),
                            ("GET", f"{base}/stall/revisions"),
                            ("GET", f"{base}/stall/revisions/1"),
                            ("POST", f"{base}/stall/revisions/1/restore")]:
            answer = anon.request(method, url, json={}, headers=hdr)
            assert answer.status_code == 403, (method, url, answer.status_code)


def test_preview_publishes_on_the_preview_channel_only(server: LiveServer,
                                                       accounts: Accounts,
                                                       client: httpx.Client):
    token = accounts.token(["curator"], ["alpha"], name="previewer")
    doc = client.get(SRC).json()
    draft = dict(doc, display=dict(doc["display"], title="Draft <i>title</i>"))
    answer = client.post("/api/v1/markets/alpha/displays/stall/preview", json=draft)
    assert answer.status_code == 200, answer.text
    channel = answer.json()["channel"]
    assert channel == "market/alpha/preview/stall"
    with connect(server.ws_url) as ws:
        replies = hello(ws, [channel, "market/alpha/display/stall"], token)
        states = {r["channel"]: r for r in replies}
        assert states[channel]["type"] == "snapshot"
        assert states[channel]["state"]["display"]["title"] == "Draft <i>title</i>"
        public = states["market/alpha/display/stall"]["state"]["display"]["title"]
        assert public == "Stall"
        again = dict(doc, display=dict(doc["display"], title="Second draft"))
        assert client.post("/api/v1/markets/alpha/displays/stall/preview",
                           json=again).status_code == 200
        patch = json.loads(ws.recv(timeout=5))
        assert patch["channel"] == channel
    bad = dict(doc, display=dict(doc["display"], nodes="nope"))
    refused = client.post("/api/v1/markets/alpha/displays/stall/preview", json=bad)
    assert refused.status_code == 422
    assert refused.json()["detail"]["errors"][0]["pointer"].startswith("/display/nodes")
    # Refused like a save: an item the market does not sell (the loader's cross-file check).
    unknown = dict(doc, display=dict(doc["display"], items=["NOPE-1"]))
    refused = client.post("/api/v1/markets/alpha/displays/stall/preview", json=unknown)
    assert refused.status_code == 422
    error = refused.json()["detail"]["errors"][0]
    assert error["pointer"] == "/display/items/0" and "NOPE-1" in error["message"], error
    assert title_on_stream(client) == "Stall"


def test_revisions_and_restore(server: LiveServer, client: httpx.Client):
    got = client.get(SRC)
    doc, etag = got.json(), got.headers["etag"]
    for title in ("One", "Two"):
        put = client.put(SRC, json=dict(doc, display=dict(doc["display"], title=title)),
                         headers={"If-Match": etag})
        etag = put.headers["etag"]
    listed = client.get(SRC.replace("/source", "/revisions")).json()
    assert [r["number"] for r in listed] == [2, 1]
    one = client.get(SRC.replace("/source", "/revisions/1")).json()
    assert one["document"]["display"]["title"] == "One"
    assert "-  title: Stall" in one["diff"] and "+  title: One" in one["diff"]
    restore = SRC.replace("/source", "/revisions/1/restore")
    assert client.post(restore).status_code == 428
    assert client.post(restore, headers={"If-Match": '"stale"'}).status_code == 412
    done = client.post(restore, headers={"If-Match": etag})
    assert done.status_code == 200, done.text
    assert title_on_stream(client) == "One"
    assert client.get(SRC.replace("/source", "/revisions")).json()[0]["action"] == "restore 1"


def test_create_display(server: LiveServer, client: httpx.Client):
    made = client.post("/api/v1/markets/alpha/displays",
                       json={"id": "new-stall", "title": "New <stall>", "zone": "hall"})
    assert made.status_code == 201, made.text
    got = client.get("/api/v1/markets/alpha/displays/new-stall/source")
    assert got.json()["display"]["title"] == "New <stall>"
    assert got.headers["etag"] == made.headers["etag"]
    again = client.post("/api/v1/markets/alpha/displays",
                        json={"id": "new-stall", "title": "x", "zone": "hall"})
    assert again.status_code == 409
    for bad in ({"id": "../etc", "title": "x", "zone": "hall"},
                {"id": "Upper", "title": "x", "zone": "hall"},
                {"id": "ok-id", "title": "x", "zone": "nowhere"}):
        assert client.post("/api/v1/markets/alpha/displays", json=bad).status_code == 422
    assert not (server.content_dir / "scenes" / "alpha" / "displays" / "ok-id.yaml").exists()


SHOW = """\
version: 1
show:
  id: opening
  title: Opening
  zone: hall
  cues:
    - number: "1"
      name: Glow
      actions:
        - {kind: mood, display: stall, dim: 0.2, fade: 1}
"""


def test_delete_asks_when_a_show_refers_to_it(server: LiveServer, client: httpx.Client):
    shows = server.content_dir / "scenes" / "alpha" / "shows"
    shows.mkdir(exist_ok=True)
    (shows / "opening.yaml").write_text(SHOW)
    made = client.post("/api/v1/markets/alpha/displays",
                       json={"id": "spare", "title": "Spare", "zone": "hall"})
    assert made.status_code == 201, made.text  # the reload also read the show
    etag = client.get(SRC).headers["etag"]
    assert client.delete(SRC).status_code == 428
    asked = client.delete(SRC, headers={"If-Match": etag})
    assert asked.status_code == 409
    assert asked.json()["detail"]["referenced_by"] == ["show opening"]
    assert stall_file(server).exists()
    spare = "/api/v1/markets/alpha/displays/spare/source"
    gone = client.delete(spare, headers={"If-Match": made.headers["etag"]})
    assert gone.status_code == 200, gone.text
    assert client.get(spare).status_code == 404
    assert client.get("/api/v1/markets/alpha/displays").json()[0]["id"] == "stall"
    # Confirmed, but the show would no longer load: refused, nothing deleted.
    forced = client.delete(SRC + "?confirm=true", headers={"If-Match": etag})
    assert forced.status_code == 409
    assert stall_file(server).exists()


def test_overview_lists_last_edit_and_escapes_titles(server: LiveServer, accounts: Accounts,
                                                     client: httpx.Client):
    got = client.get(SRC)
    doc = got.json()
    doc["display"]["title"] = "<script>alert(1)</script>"
    assert client.put(SRC, json=doc, headers={"If-Match": got.headers["etag"]}).is_success
    accounts.user("cora", ["curator"], ["alpha"])
    with httpx.Client(base_url=server.url, timeout=10) as browser:
        accounts.login(browser, "cora")
        page = browser.get("/studio/alpha")
    assert page.status_code == 200
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "<script>alert(1)" not in page.text
    assert 'href="/d/alpha/stall"' in page.text
    assert "APL-1" in page.text  # the items bound
    assert "UTC" in page.text


def test_overview_form_creates_a_display(server: LiveServer, accounts: Accounts):
    accounts.user("cleo", ["curator"], ["alpha"])
    with httpx.Client(base_url=server.url, timeout=10) as browser:
        accounts.login(browser, "cleo")
        csrf = csrf_from(browser.get("/studio/alpha").text)
        bad = browser.post("/studio/alpha/displays",
                           data={"csrf": csrf, "id": "Bad Id", "title": "x", "zone": "hall"})
        assert bad.status_code == 422
        assert 'id="id-err"' in bad.text
        made = browser.post("/studio/alpha/displays", data={
            "csrf": csrf, "id": "herbs", "title": "Herbs & more", "zone": "hall"})
        assert made.status_code == 303
        assert made.headers["location"] == "/studio/alpha?created=herbs"
        assert "Display <code>herbs</code> created" in browser.get(made.headers["location"]).text
        no_csrf = browser.post("/studio/alpha/displays",
                               data={"id": "x2", "title": "x", "zone": "hall"})
        assert no_csrf.status_code in (400, 403)
    assert (server.content_dir / "scenes" / "alpha" / "displays" / "herbs.yaml").exists()


def test_session_cookie_writes_need_the_csrf_header(server: LiveServer, accounts: Accounts):
    accounts.user("cami", ["curator"], ["alpha"])
    with httpx.Client(base_url=server.url, timeout=10) as browser:
        accounts.login(browser, "cami")
        csrf = csrf_from(browser.get("/studio/alpha").text)
        got = browser.get(SRC)
        assert got.status_code == 200
        doc = dict(got.json(), display=dict(got.json()["display"], title="By cookie"))
        bare = browser.put(SRC, json=doc, headers={"If-Match": got.headers["etag"]})
        assert bare.status_code == 403
        ok = browser.put(SRC, json=doc, headers={"If-Match": got.headers["etag"],
                                                 "X-CSRF-Token": csrf})
        assert ok.status_code == 200, ok.text
        assert browser.get(SRC.replace("/source", "/revisions")).json()[0]["actor"] == "cami"


def test_overview_renames_and_deletes(server: LiveServer, accounts: Accounts,
                                      client: httpx.Client):
    client.post("/api/v1/markets/alpha/displays",
                json={"id": "spare", "title": "Spare", "zone": "hall"})
    accounts.user("cleo", ["curator"], ["alpha"])
    with httpx.Client(base_url=server.url, timeout=10) as browser:
        accounts.login(browser, "cleo")
        page = browser.get("/studio/alpha").text
        csrf = csrf_from(page)
        etag = client.get(SRC).headers["etag"]
        renamed = browser.post("/studio/alpha/displays/stall/rename",
                               data={"csrf": csrf, "etag": etag, "title": "<em>Big</em>"})
        assert renamed.status_code == 303
        assert title_on_stream(client) == "<em>Big</em>"
        stale = browser.post("/studio/alpha/displays/stall/rename",
                             data={"csrf": csrf, "etag": etag, "title": "Lost?"})
        assert stale.status_code == 412
        assert title_on_stream(client) == "<em>Big</em>"
        spare = client.get("/api/v1/markets/alpha/displays/spare/source").headers["etag"]
        gone = browser.post("/studio/alpha/displays/spare/delete",
                            data={"csrf": csrf, "etag": spare})
        assert gone.status_code == 303
    assert client.get("/api/v1/markets/alpha/displays/spare/source").status_code == 404
