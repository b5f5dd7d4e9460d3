"""A grower edits their own farm's profile (#21): description, location, practices and
photos saved into market.yaml round-trip (comments and key order kept), under the file's
revision (a stale page gets a conflict, not an overwrite); a display showing
`{{ farm.description }}` follows through the normal reload; bad input is named next to its
field; another farm's profile is not theirs; a grower uploads a photo through the asset
pipeline (images only) and it becomes one of the farm's photos."""

from __future__ import annotations

import io
import re
import time
from collections.abc import Iterator

import httpx
import pytest
import yaml
from PIL import Image

from studio.grower_content import write_content
from studio.test_grower import signed_in

from support.accounts import Accounts, csrf_from
from support.live import LiveServer, start_server

COMMENTED = """\
# The alpha market: kept by hand, comments matter.
format: 1
market: {id: alpha, name: Market alpha, currency: EUR}
zones: [{id: hall, name: Hall}]
farms:
  # Hill Farm sells apples and pears.
  - id: hill-farm
    name: Hill Farm
    location: North slope  # since 1988
  - {id: river-farm, name: River Farm}
"""
STORY_PANEL = """\
format: 1
display:
  id: hill-stall
  zone: hall
  title: Hill Farm stall
  farm: hill-farm
  items: [APL-1, PEAR-1]
  nodes:
    - {id: story, kind: text, text: "{{ farm.description }}"}
"""


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("grower-profile")
    content = write_content(root / "content")
    market = content / "scenes" / "alpha" / "market.yaml"
    items = market.read_text().split("items:\n", 1)[1].split("growers_set_prices")[0]
    market.write_text(COMMENTED + "items:\n" + items)
    (content / "scenes" / "alpha" / "displays" / "hill-stall.yaml").write_text(STORY_PANEL)
    server = start_server(root, content_dir=content, watch=False)
    accounts = Accounts(server)
    accounts.user("hana", ["grower"], ["alpha"], farm="hill-farm")
    accounts.user("rita", ["grower"], ["alpha"], farm="river-farm")
    yield server
    server.stop()


def grower_page(live: LiveServer, name: str) -> tuple[httpx.Client, str]:
    client, _ = signed_in(live, name)
    return client, client.get("/studio/alpha/grower").text


def etag(html: str) -> str:
    return re.search(r'name="etag" value="([^"]+)"', html).group(1).replace("&#34;", '"')


def market_file(live: LiveServer) -> str:
    return (live.content_dir / "scenes" / "alpha" / "market.yaml").read_text()


def story_text(live: LiveServer) -> str:
    state = live.app.state.services.scenes.hub.snapshot("market/alpha/display/hill-stall")[2]
    nodes = state["nodes"]
    node = nodes["story"] if isinstance(nodes, dict) else next(
        n for n in nodes if n["id"] == "story")
    return node["text"]


def test_a_grower_edits_their_farm_profile(live: LiveServer) -> None:
    hana, html = grower_page(live, "hana")
    assert "North slope" in html and 'action="/studio/alpha/grower/profile"' in html
    csrf, revision = csrf_from(html), etag(html)
    saved = hana.post("/studio/alpha/grower/profile", data={
        "csrf": csrf, "etag": revision, "location": "North slope",
        "description": "We grow <b>old</b> apple varieties.\nNo sprays since 1990.",
        "practices": "no-dig beds\n\nrainwater irrigation\n"})
    assert saved.status_code == 303, saved.text
    text = market_file(live)
    # The round trip keeps the file's comments, key order and the other farm as they were.
    assert text.startswith("# The alpha market: kept by hand, comments matter.\n")
    assert "  # Hill Farm sells apples and pears.\n" in text
    assert "location: North slope  # since 1988" in text
    assert "  - {id: river-farm, name: River Farm}\n" in text
    assert text.index("name: Hill Farm") < text.index("location:") < text.index("description")
    hill = next(f for f in yaml.safe_load(text)["farms"] if f["id"] == "hill-farm")
    assert hill["practices"] == ["no-dig beds", "rainwater irrigation"]
    assert hill["description"] == ("We grow <b>old</b> apple varieties.\n"
                                   "No sprays since 1990.")
    # The display that shows the farm's story follows through the normal reload path.
    assert story_text(live).startswith("We grow <b>old</b> apple varieties.")
    page = hana.get(saved.headers["location"]).text
    assert "Saved your farm&#39;s profile" in page
    assert "&lt;b&gt;old&lt;/b&gt;" in page  # markup is shown as text
    # A stale page (the revision it was opened at) does not overwrite the newer file.
    stale = hana.post("/studio/alpha/grower/profile", data={
        "csrf": csrf, "etag": revision, "description": "Overwritten?"})
    assert stale.status_code == 409 and "your text was not saved" in stale.text
    assert "Overwritten?" not in market_file(live)


def test_bad_input_is_named_next_to_its_field(live: LiveServer) -> None:
    hana, html = grower_page(live, "hana")
    before = market_file(live)
    bad = hana.post("/studio/alpha/grower/profile", data={
        "csrf": csrf_from(html), "etag": etag(html), "description": "x" * 2001,
        "photo_asset": "no-such-photo", "photo_alt": "a photo"})
    assert bad.status_code == 422
    assert 'id="pf-description-err"' in bad.text and 'id="pf-photo-0-err"' in bad.text
    assert "not an image of this market" in bad.text
    assert market_file(live) == before  # nothing half-applied
    forged = hana.post("/studio/alpha/grower/profile", data={
        "csrf": "forged", "etag": etag(html), "description": "x"})
    assert forged.status_code == 403


def test_another_farm_is_not_theirs(live: LiveServer) -> None:
    rita, html = grower_page(live, "rita")
    assert "North slope" not in html  # her page shows River Farm
    # Whatever the address says, her form saves her own farm only.
    rita.post("/studio/alpha/grower/profile?farm=hill-farm", data={
        "csrf": csrf_from(html), "etag": etag(html), "description": "River honey."})
    text = market_file(live)
    assert "River honey." in text and "We grow" in text
    assert live.client().get("/studio/alpha/grower").status_code in (303, 307)


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (40, 120, 40)).save(buffer, "PNG")
    return buffer.getvalue()


def test_a_grower_adds_a_photo_through_the_asset_pipeline(live: LiveServer) -> None:
    hana, html = grower_page(live, "hana")
    headers = {"X-CSRF-Token": csrf_from(html)}
    model = hana.post("/api/v1/assets", headers=headers, data={"market": "alpha"},
                      files={"files": ("crate.glb", b"glTF", "model/gltf-binary")})
    assert model.status_code == 403  # growers add images only
    other = hana.post("/api/v1/assets", headers=headers, data={"market": "beta"},
                      files={"files": ("orchard.png", _png(), "image/png")})
    assert other.status_code == 403  # and only to their own market
    sent = hana.post("/api/v1/assets", headers=headers, data={"market": "alpha"},
                     files={"files": ("orchard.png", _png(), "image/png")})
    assert sent.status_code == 202, sent.text
    asset = sent.json()
    deadline = time.monotonic() + 20
    while asset["status"] not in ("ready", "failed") and time.monotonic() < deadline:
        time.sleep(0.2)
        asset = hana.get(f"/api/v1/assets/{asset['id']}").json()
    assert asset["status"] == "ready", asset
    html = hana.get("/studio/alpha/grower").text
    saved = hana.post("/studio/alpha/grower/profile", data={
        "csrf": csrf_from(html), "etag": etag(html), "location": "North slope",
        "description": "We grow old apple varieties.", "photo_asset": asset["name"],
        "photo_alt": "The orchard in May"})
    assert saved.status_code == 303, saved.text
    assert f"asset: {asset['name']}" in market_file(live)
    page = hana.get("/studio/alpha/grower").text
    photos = page.split('id="photos"')[1].split("</ul>")[0]
    assert '<img src="/assets/' in photos and 'value="The orchard in May"' in photos
    # The stall's display state carries the photo with its URL; the market page shows it.
    farm = live.app.state.services.scenes.hub.snapshot(  # type: ignore[attr-defined]
        "market/alpha/display/hill-stall")[2]["farm"]
    assert farm["photos"] == [{"asset": asset["name"], "alt": "The orchard in May",
                               "url": farm["photos"][0]["url"]}]
    assert farm["photos"][0]["url"].startswith("/assets/")
    market_page = live.client().get("/m/alpha").text
    assert f'src="{farm["photos"][0]["url"]}" alt="The orchard in May"' in market_page


@pytest.mark.parametrize("entry", [
    {"stories_four_eyes": "true"}, {"stories_four_eyes": 1},
    {"farms": [{"id": "f", "name": "F", "photos": [{"asset": "Bad Name"}]}]},
    {"farms": [{"id": "f", "name": "F", "photos": [{"asset": "ok", "alt": "x" * 201}]}]},
    {"farms": [{"id": "f", "name": "F", "practices": ["x" * 121]}]}])
def test_market_file_settings_are_validated(entry: dict) -> None:
    """`stories_four_eyes` is a real boolean; a farm's photos name assets and say what they
    show in at most 200 characters; a practice is at most 120 characters."""
    from pydantic import ValidationError

    from holobazaar.scenes.models import MarketFile

    base = {"format": 1, "market": {"id": "m", "name": "M"}, "zones": [{"id": "z",
                                                                         "name": "Z"}]}
    MarketFile.model_validate({**base, "stories_four_eyes": True,
                               "farms": [{"id": "f", "name": "F", "photos": [
                                   {"asset": "orchard-1", "alt": "The orchard"}]}]})
    with pytest.raises(ValidationError):
        MarketFile.model_validate({**base, **entry})
