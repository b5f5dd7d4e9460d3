"""Authoring API for zones (market.yaml) and show cue lists (shows/*.yaml), and rehearsing
a cue on the preview channels (issue #18). One server for the module."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from support.accounts import Accounts
from support.live import LiveServer, start_server
from support.markets import write_stall_markets

ZONES = "/api/v1/markets/alpha/zones"
SHOW_SRC = "/api/v1/markets/alpha/shows/opening/source"

MARKET = """\
format: 1
# the hall and the yard
market: {id: alpha, name: Market alpha, currency: EUR}
zones:
  - id: hall   # under the roof
    name: Hall
items:
  - {sku: APL-1, name: Apples, price: "2.50", unit: kg, stock: 10}
"""

SHOW = """\
version: 1
show:
  id: opening
  title: Opening
  zone: hall
  cues:
    # the first light
    - number: "1"
      name: Glow
      duration: 2   # seconds
      actions:
        - {kind: mood, display: stall, dim: 0.2, fade: 1}
    - number: "2"
      name: Hello
      pre_wait: 1
      duration: 3
      actions:
        - {kind: overlay, title: Hello, text: Welcome to the hall}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("authoring")
    content = write_stall_markets(root / "content")
    (content / "scenes" / "alpha" / "market.yaml").write_text(MARKET)
    shows = content / "scenes" / "alpha" / "shows"
    shows.mkdir()
    (shows / "opening.yaml").write_text(SHOW)
    live = start_server(root, content_dir=content, watch=False)
    yield live
    live.stop()


@pytest.fixture(scope="module")
def accounts(server: LiveServer) -> Accounts:
    return Accounts(server)


@pytest.fixture(scope="module")
def client(server: LiveServer, accounts: Accounts) -> Iterator[httpx.Client]:
    token = accounts.token(["curator"], ["alpha"], name="zones-curator")
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"},
                      timeout=10) as c:
        yield c


@pytest.fixture(scope="module")
def performer(server: LiveServer, accounts: Accounts) -> Iterator[httpx.Client]:
    token = accounts.token(["performer"], ["alpha"], name="stage")
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"},
                      timeout=10) as c:
        yield c


def market_file(server: LiveServer) -> Path:
    return server.content_dir / "scenes" / "alpha" / "market.yaml"


def show_file(server: LiveServer) -> Path:
    return server.content_dir / "scenes" / "alpha" / "shows" / "opening.yaml"


def test_zones_round_trip_conflict_and_pointers(server: LiveServer, client: httpx.Client):
    got = client.get(ZONES)
    assert got.status_code == 200
    assert got.json()["zones"] == [{"id": "hall", "name": "Hall"}]
    etag = got.headers["etag"]
    made = client.post(ZONES, json={"id": "yard", "name": "The <b>yard</b>",
                                    "map": {"x": 0, "y": 60, "w": 50, "h": 40}})
    assert made.status_code == 201, made.text
    text = market_file(server).read_text()
    assert text.startswith("format: 1\n# the hall and the yard\n")
    assert "  - id: hall   # under the roof\n" in text
    assert "map: {x: 0, y: 60, w: 50, h: 40}" in text
    # The etag from before the new zone is stale now: 412 with the current zones.
    stale = client.put(ZONES, json=[{"id": "hall", "name": "Hall 2"}],
                       headers={"If-Match": etag})
    assert stale.status_code == 412
    assert [z["id"] for z in stale.json()["detail"]["current"]] == ["hall", "yard"]
    assert client.put(ZONES, json=[{"id": "hall", "name": "x"}]).status_code == 428
    etag = made.headers["etag"]
    too_long = client.patch(ZONES + "/yard", json={"name": "y" * 121},
                            headers={"If-Match": etag})
    assert too_long.status_code == 422
    error = too_long.json()["detail"]["errors"][0]
    assert error["pointer"] == "/name" and "120" in error["message"], error
    outside = client.patch(ZONES + "/yard", json={"map": {"x": 80, "y": 0, "w": 30, "h": 10}},
                           headers={"If-Match": etag})
    assert outside.status_code == 422
    assert outside.json()["detail"]["errors"][0]["pointer"].startswith("/map")
    twice = client.put(ZONES, json=[{"id": "hall", "name": "A"}, {"id": "hall", "name": "B"},
                                    {"id": "yard", "name": "Yard"}], headers={"If-Match": etag})
    assert twice.status_code == 422
    assert twice.json()["detail"]["errors"][0]["pointer"] == "/zones/1/id"
    renamed = client.patch(ZONES + "/yard", json={"name": "Yard"}, headers={"If-Match": etag})
    assert renamed.status_code == 200, renamed.text
    assert "  - id: hall   # under the roof\n" in market_file(server).read_text()
    assert client.post(ZONES, json={"id": "yard", "name": "Again"}).status_code == 409
    # A zone a display stands in cannot go: the loader refuses, the file comes back.
    before = market_file(server).read_bytes()
    gone = client.put(ZONES, json=[{"id": "yard", "name": "Yard"}],
                      headers={"If-Match": renamed.headers["etag"]})
    assert gone.status_code == 422
    assert "hall" in json.dumps(gone.json()["detail"]["errors"])
    assert market_file(server).read_bytes() == before
    assert client.get("/api/v1/markets/alpha/zones").json()["zones"][1]["name"] == "Yard"


def test_show_source_check_save_and_conflict(server: LiveServer, performer: httpx.Client):
    got = performer.get(SHOW_SRC)
    assert got.status_code == 200, got.text
    body, etag = got.json(), got.headers["etag"]
    assert [(t["number"], t["start"], t["end"]) for t in body["timeline"]] == [
        ("1", 0.0, 2.0), ("2", 3.0, 6.0)]
    doc = body["document"]
    cues = doc["show"]["cues"]
    # Moved: cue 2 first, with a longer pre-wait.
    doc["show"]["cues"] = [dict(cues[1], pre_wait=2.5), cues[0]]
    checked = performer.post(SHOW_SRC.replace("/source", "/check"), json=doc)
    assert checked.json()["errors"] == []
    assert checked.json()["timeline"][0] == {"number": "2", "name": "Hello", "start": 2.5,
                                             "end": 5.5, "child": False, "index": 0}
    saved = performer.put(SHOW_SRC, json=doc, headers={"If-Match": etag})
    assert saved.status_code == 200, saved.text
    text = show_file(server).read_text()
    assert text.index('number: "2"') < text.index('number: "1"')
    assert "duration: 2   # seconds" in text  # cue 1 kept its comment when it moved
    assert "pre_wait: 2.5" in text
    again = performer.put(SHOW_SRC, json=doc, headers={"If-Match": etag})
    assert again.status_code == 412
    assert again.json()["detail"]["current"]["show"]["cues"][0]["number"] == "2"
    # Refused like the loader: pointers and validate's messages; nothing written.
    before = show_file(server).read_bytes()
    bad = json.loads(json.dumps(doc))
    bad["show"]["cues"][1]["actions"][0]["display"] = "nowhere"
    bad["show"]["cues"][0]["pre_wait"] = -1
    refused = performer.put(SHOW_SRC, json=bad, headers={"If-Match": saved.headers["etag"]})
    assert refused.status_code == 422
    assert refused.json()["detail"]["errors"][0]["pointer"] == "/show/cues/0/pre_wait"
    bad["show"]["cues"][0]["pre_wait"] = 0
    refused = performer.put(SHOW_SRC, json=bad, headers={"If-Match": saved.headers["etag"]})
    error = refused.json()["detail"]["errors"][0]
    assert error == {"pointer": "/show/cues/1/actions/0/display",
                     "message": "unknown display 'nowhere'", "file": error["file"]}
    assert show_file(server).read_bytes() == before
    state = performer.get("/api/v1/shows/alpha/opening").json()
    assert [c["number"] for c in state["cue_list"]] == ["2", "1"]  # the runner follows


def test_rehearse_reaches_the_preview_channel_only(server: LiveServer, accounts: Accounts,
                                                   performer: httpx.Client):
    viewer = accounts.token(["curator"], ["alpha"], name="phone")
    with connect(server.ws_url) as ws:
        assert json.loads(ws.recv(timeout=5))["type"] == "welcome"
        ws.send(json.dumps({"type": "hello", "protocol": 1, "token": viewer, "subscribe": [
            {"channel": "market/alpha/zone/hall"}]}))
        assert json.loads(ws.recv(timeout=5))["type"] == "snapshot"
        fired = performer.post("/api/v1/markets/alpha/shows/opening/rehearse",
                               json={"number": "1"})
        assert fired.status_code == 200, fired.text
        assert fired.json()["channels"] == ["market/alpha/preview/stall"]
        ws.send(json.dumps({"type": "hello", "protocol": 1, "token": viewer, "subscribe": [
            {"channel": "market/alpha/preview/stall"}]}))
        frames = [json.loads(ws.recv(timeout=5))]
        assert frames[0]["type"] == "snapshot"
        fired = performer.post("/api/v1/markets/alpha/shows/opening/rehearse",
                               json={"number": "1"})
        frame = json.loads(ws.recv(timeout=5))
        assert frame["type"] == "cue" and frame["channel"] == "market/alpha/preview/stall"
        assert frame["cue"]["number"] == "1" and "rehearsal" in frame["cue"]["id"]
        assert frame["cue"]["actions"][0]["kind"] == "mood"
    # The live show did not move, and visitors' zone channel carried no cue.
    state = performer.get("/api/v1/shows/alpha/opening").json()
    assert state["status"] == "ready" and state["cues"] == []
    assert performer.post("/api/v1/markets/alpha/shows/opening/rehearse",
                          json={"number": "99"}).status_code == 404


def test_other_market_and_visitors_refused(server: LiveServer, accounts: Accounts):
    beta = accounts.token(["curator", "performer"], ["beta"], name="beta-staff")
    with httpx.Client(base_url=server.url, timeout=10) as anon:
        hdr = {"Authorization": f"Bearer {beta}", "If-Match": '"x"'}
        for method, url in [("GET", ZONES), ("PUT", ZONES), ("POST", ZONES),
                            ("PATCH", ZONES + "/hall"), ("GET", SHOW_SRC), ("PUT", SHOW_SRC),
                            ("POST", SHOW_SRC.replace("/source", "/check")),
                            ("POST", SHOW_SRC.replace("/source", "/rehearse"))]:
            answer = anon.request(method, url, json={"number": "1"}, headers=hdr)
            assert answer.status_code == 403, (method, url, answer.status_code)
            assert anon.request(method, url, json={}).status_code == 401
        # A visitor cannot join a preview channel.
        with connect(server.ws_url) as ws:
            ws.recv(timeout=5)
            ws.send(json.dumps({"type": "hello", "protocol": 1, "subscribe": [
                {"channel": "market/alpha/preview/stall"}]}))
            assert json.loads(ws.recv(timeout=5))["code"] == "forbidden"


def test_duplicate_display(server: LiveServer, client: httpx.Client):
    base = "/api/v1/markets/alpha/displays"
    source = server.content_dir / "scenes" / "alpha" / "displays" / "stall.yaml"
    source.write_text("# the stall by the gate\n" + source.read_text())
    made = client.post(f"{base}/stall/duplicate", json={"id": "stall-copy"})
    assert made.status_code == 201, made.text
    copy = source.with_name("stall-copy.yaml").read_text()
    assert copy.startswith("# the stall by the gate\n") and "id: stall-copy" in copy
    assert client.get(f"{base}/stall-copy/source").json()["display"]["items"] == ["APL-1"]
    revisions = client.get(f"{base}/stall-copy/revisions").json()
    assert revisions[0]["action"] == "duplicate of stall"
    assert client.post(f"{base}/nope/duplicate", json={"id": "x-1"}).status_code == 404
    assert client.post(f"{base}/stall/duplicate", json={"id": "stall-copy"}).status_code == 409
    bad = client.post(f"{base}/stall/duplicate", json={"id": "Bad Id"})
    assert bad.status_code == 422 and bad.json()["detail"]["errors"][0]["pointer"] == "/id"
    gone = client.delete(f"{base}/stall-copy/source", headers={"If-Match": made.headers["etag"]})
    assert gone.status_code == 200, gone.text
