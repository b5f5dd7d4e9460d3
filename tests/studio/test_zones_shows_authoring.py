"""Authoring API for zones (market.yaml) and show cue lists (shows/*.yaml), and rehearsing
a cue on the preview channels (issue #18). One server for the module."""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image
from websockets.sync.client import connect

from support.accounts import Accounts, csrf_from
from support.live import LiveServer, start_server
from support.markets import write_stall_markets

REPO = Path(__file__).resolve().parents[2]
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

TOMATOES = """\
format: 1
display:
  id: tomatoes
  zone: hall
  title: Tomatoes
  anchor: {kind: marker, size: 0.12}
  nodes:
    - {id: tomato, kind: model, asset: tomato}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("authoring")
    content = write_stall_markets(root / "content")
    (content / "scenes" / "alpha" / "market.yaml").write_text(MARKET)
    shows = content / "scenes" / "alpha" / "shows"
    shows.mkdir()
    (shows / "opening.yaml").write_text(SHOW)
    (content / "scenes" / "alpha" / "displays" / "tomatoes.yaml").write_text(TOMATOES)
    shutil.copy(REPO / "assets" / "build" / "tomato.glb", content / "assets" / "tomato.glb")
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
        assert fired.json()["channels"] == ["market/alpha/preview/stall",
                                            "market/alpha/preview/tomatoes"]
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
        # A draft being edited is rehearsed as it stands (checked first), not the file.
        draft = performer.get(SHOW_SRC).json()["document"]
        first = next(c for c in draft["show"]["cues"] if c["number"] == "1")
        first["actions"] = [{"kind": "overlay", "text": "Draft <i>line</i>"}]
        fired = performer.post("/api/v1/markets/alpha/shows/opening/rehearse",
                               json={"number": "1", "document": draft})
        assert fired.status_code == 200, fired.text
        frame = json.loads(ws.recv(timeout=5))
        assert frame["cue"]["actions"] == [{"kind": "overlay", "text": "Draft <i>line</i>",
                                            "title": "", "duration": None}]
        first["actions"] = [{"kind": "overlay"}]
        refused = performer.post("/api/v1/markets/alpha/shows/opening/rehearse",
                                 json={"number": "1", "document": draft})
        assert refused.status_code == 422
        assert refused.json()["detail"]["errors"][0]["pointer"].endswith("/actions/0/text")
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


def test_overview_zones_duplicate_thumbnails_and_refusals(server: LiveServer,
                                                         accounts: Accounts,
                                                         client: httpx.Client):
    accounts.user("olga", ["curator"], ["alpha"])
    accounts.user("boris", ["curator"], ["beta"])
    with httpx.Client(base_url=server.url, timeout=10) as browser:
        accounts.login(browser, "olga")
        page = browser.get("/studio/alpha")
        assert page.status_code == 200
        csrf = csrf_from(page.text)
        # A thumbnail drawn from the content model; a display without one says so.
        assert 'src="/studio/alpha/displays/tomatoes/thumbnail.png"' in page.text
        assert "no model or image" in page.text
        thumb = browser.get("/studio/alpha/displays/tomatoes/thumbnail.png")
        assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/png"
        with Image.open(io.BytesIO(thumb.content)) as img:
            assert img.size == (256, 256) and img.getbbox() is not None  # not empty
        assert browser.get("/studio/alpha/displays/stall/thumbnail.png").status_code == 404
        # A zone named with HTML is shown as text; a name too long is refused by the field.
        made = browser.post("/studio/alpha/zones", data={
            "csrf": csrf, "id": "porch", "name": "<b>Porch</b>", "x": "0", "y": "0",
            "w": "20", "h": "10"})
        assert made.status_code == 303, made.text
        page = browser.get("/studio/alpha").text
        assert "&lt;b&gt;Porch&lt;/b&gt;" in page and "<b>Porch</b>" not in page
        etag = client.get(ZONES).headers["etag"]
        long = browser.post("/studio/alpha/zones/porch", data={
            "csrf": csrf, "etag": etag, "name": "p" * 121, "x": "", "y": "", "w": "", "h": ""})
        assert long.status_code == 422
        assert "at most 120 characters" in long.text
        half = browser.post("/studio/alpha/zones/porch", data={
            "csrf": csrf, "etag": etag, "name": "Porch", "x": "a", "y": "", "w": "", "h": ""})
        assert half.status_code == 422 and "leave all four empty" in half.text
        moved = browser.post("/studio/alpha/zones/porch", data={
            "csrf": csrf, "etag": etag, "name": "Porch", "x": "10", "y": "80", "w": "30",
            "h": "20"})
        assert moved.status_code == 303
        assert client.get(ZONES).json()["zones"][-1]["map"] == {"x": 10, "y": 80, "w": 30,
                                                                 "h": 20}
        stale = browser.post("/studio/alpha/zones/porch", data={
            "csrf": csrf, "etag": etag, "name": "Lost", "x": "", "y": "", "w": "", "h": ""})
        assert stale.status_code == 412 and "Someone changed the zones" in stale.text
        # Duplicate from the overview; of an unknown display: 404.
        copy = browser.post("/studio/alpha/displays/tomatoes/duplicate",
                            data={"csrf": csrf, "id": "tomatoes-2"})
        assert copy.status_code == 303 and copy.headers["location"].endswith("tomatoes-2")
        assert browser.post("/studio/alpha/displays/nope/duplicate",
                            data={"csrf": csrf, "id": "nope-2"}).status_code == 404
        # Deleting a display on a printed marker asks first and says so.
        marker_etag = client.get("/api/v1/markets/alpha/displays/tomatoes/source"
                                 ).headers["etag"]
        asked = browser.post("/studio/alpha/displays/tomatoes/delete",
                             data={"csrf": csrf, "etag": marker_etag})
        assert asked.status_code == 409
        assert "the marker sheet" in asked.text and "Delete anyway" in asked.text
        accounts.login(browser, "boris")
        for url in ("/studio/alpha", "/studio/alpha/displays/tomatoes/thumbnail.png"):
            assert browser.get(url).status_code == 403
        assert browser.post("/studio/alpha/zones", data={"csrf": csrf_from(
            browser.get("/studio/beta").text), "id": "x", "name": "X"}).status_code == 403


def test_show_pages_for_performers_and_curators_only(server: LiveServer, accounts: Accounts,
                                                     performer: httpx.Client):
    got = performer.get(SHOW_SRC)
    doc = got.json()["document"]
    doc["show"]["title"] = "<b>Opening</b> night"
    saved = performer.put(SHOW_SRC, json=doc, headers={"If-Match": got.headers["etag"]})
    assert saved.status_code == 200, saved.text
    accounts.user("perf", ["performer"], ["alpha"])
    accounts.user("cur", ["curator"], ["alpha"])
    accounts.user("bea", ["performer", "curator"], ["beta"])
    with httpx.Client(base_url=server.url, timeout=10) as browser:
        for name in ("perf", "cur"):
            accounts.login(browser, name)
            listing = browser.get("/studio/alpha/shows")
            assert listing.status_code == 200
            assert "&lt;b&gt;Opening&lt;/b&gt; night" in listing.text
            assert "<b>Opening" not in listing.text
            page = browser.get("/studio/alpha/shows/opening")
            assert page.status_code == 200
            assert "<h1>&lt;b&gt;Opening&lt;/b&gt; night</h1>" in page.text
            assert "\\u003cb\\u003eOpening" in page.text  # the boot JSON cannot close <script>
            assert '/d/alpha/stall?preview=1&amp;link=hbpv_' in page.text
            assert browser.get("/studio/alpha/shows/nope").status_code == 404
        accounts.login(browser, "bea")
        for url in ("/studio/alpha/shows", "/studio/alpha/shows/opening"):
            assert browser.get(url).status_code == 403


def test_a_performer_lands_on_the_shows(server: LiveServer, accounts: Accounts):
    accounts.user("paul", ["performer"], ["alpha"])
    with httpx.Client(base_url=server.url, timeout=10) as browser:
        accounts.login(browser, "paul")
        landing = browser.get("/studio/alpha")
        assert landing.status_code == 303
        assert landing.headers["location"] == "/studio/alpha/shows"
