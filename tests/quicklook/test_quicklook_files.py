"""Phone AR files (#22): every demo display as USDZ for AR Quick Look (ARKit checker, today's
prices read back from the file, the price label's texture) and as one GLB for Scene
Viewer; a price change makes a new URL and a new file; the cache, 404s, one generation for
concurrent first requests, and a model that cannot be converted left out with a log line.

One live server over the demo market for the module; every display's USDZ is made once."""

from __future__ import annotations

import copy
import io
import logging
import re
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from holobazaar.quicklook.compose import compose, price_lines
from holobazaar.quicklook.usd import write_usdz

from support.live import LiveServer, start_server
from support.usd_checker import arkit_problems
from support.waiting import wait_for

MARKET = "greenhaven"
PRICED = "zonneveld-greens"  # the display whose price changes here
UNTOUCHED = "ooievaar-cheese"  # its GLB is first asked for in the concurrency test


@pytest.fixture(scope="module")
def live(tmp_path_factory) -> LiveServer:
    server = start_server(tmp_path_factory.mktemp("quicklook"), watch=False)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def usdz(live, tmp_path_factory) -> dict[str, dict]:
    """display -> {path, state, hash, response}: every demo display's USDZ, made once."""
    out = tmp_path_factory.mktemp("usdz")
    files = {}
    with live.client() as http:
        for d in http.get(f"/api/v1/markets/{MARKET}/displays").json():
            state = http.get(f"/api/v1/displays/{MARKET}/{d['id']}/state").json()
            r = http.get(f"/d/{MARKET}/{d['id']}.usdz?state={state['state_hash']}")
            assert r.status_code == 200, (d["id"], r.text)
            path = out / f"{d['id']}.usdz"
            path.write_bytes(r.content)
            files[d["id"]] = {"path": path, "state": state["state"],
                              "hash": state["state_hash"], "response": r}
    assert len(files) == 10
    return files


def stage_of(path: Path):
    from pxr import Usd

    stage = Usd.Stage.Open(str(path))
    assert stage is not None
    return stage


def root_data(path: Path) -> dict:
    stage = stage_of(path)  # held: a prim of a collected stage is expired
    return dict(stage.GetDefaultPrim().GetCustomDataByKey("holobazaar"))


def part_texture(path: Path, node_id: str) -> Image.Image:
    """The picture a label part shows: its material's UsdUVTexture file, read from the zip."""
    from pxr import UsdShade

    stage = stage_of(path)
    prim = stage.GetPrimAtPath(f"/Display/Parts/{node_id.replace('-', '_')}/Mesh0")
    material = UsdShade.MaterialBindingAPI(prim).ComputeBoundMaterial()[0]
    texture = UsdShade.Shader(stage.GetPrimAtPath(material.GetPath().AppendChild("BaseColor")))
    name = texture.GetInput("file").Get().path
    with zipfile.ZipFile(path) as package:
        return Image.open(io.BytesIO(package.read(name))).convert("RGBA")


def test_every_demo_display_passes_the_arkit_checker_with_todays_prices(usdz):
    for display, entry in usdz.items():
        assert arkit_problems(entry["path"]) == [], display
        data = root_data(entry["path"])
        assert data["state"] == entry["hash"] and data["display"] == display
        # Today's prices (price, unit, stock) of every item the display binds.
        assert dict(data["prices"]) == price_lines(entry["state"]), display
        assert list(data["left_out"]) == []
        with zipfile.ZipFile(entry["path"]) as package:  # USDZ: the layer first, stored
            names = package.namelist()
            assert names[0] == "display.usdc"
            assert all(i.compress_type == zipfile.ZIP_STORED for i in package.infolist())
    stage = stage_of(usdz[PRICED]["path"])
    from pxr import UsdGeom

    assert UsdGeom.GetStageUpAxis(stage) == "Y" and UsdGeom.GetStageMetersPerUnit(stage) == 1
    prices = dict(root_data(usdz[PRICED]["path"])["prices"])
    assert prices["TOM-BRANDY"] == "Brandywine heirloom tomatoes: €6.50 / kg (In stock (18))"


def test_the_price_label_is_drawn_into_its_texture(usdz):
    path = usdz[PRICED]["path"]
    stage = stage_of(path)
    label = stage.GetPrimAtPath("/Display/Parts/tomato_price")
    assert "6.50" in label.GetCustomDataByKey("holobazaar")["text"]
    image = part_texture(path, "tomato-price")
    # Ink of the label's colour (the client's default white) on the dark backing: text.
    pixels = np.asarray(image).reshape(-1, 4).astype(int)
    ink = int(((pixels[:, :3] > 200).all(axis=1) & (pixels[:, 3] > 200)).sum())
    backing = int((pixels[:, :3] < 60).all(axis=1).sum())
    assert ink > 0.03 * len(pixels) and backing > 0.4 * len(pixels), (ink, backing)


def test_a_price_change_changes_the_url_and_the_file(live, usdz):
    old = usdz[PRICED]
    with live.client() as http:
        r = http.patch(f"/api/v1/markets/{MARKET}/items/TOM-BRANDY", json={"price": "5.90"},
                       headers=live.write_headers)
        assert r.status_code == 200, r.text
        state = wait_for(lambda: (s := http.get(f"/api/v1/displays/{MARKET}/{PRICED}/state")
                                  .json())["state_hash"] != old["hash"] and s)
        page = http.get(f"/d/{MARKET}/{PRICED}", headers={"user-agent": IPHONE}).text
        assert f"/d/{MARKET}/{PRICED}.usdz?state={state['state_hash']}" in page
        assert old["hash"] not in page
        new = http.get(f"/d/{MARKET}/{PRICED}.usdz?state={state['state_hash']}")
        assert new.status_code == 200 and new.content != old["path"].read_bytes()
        assert new.headers["cache-control"] == "public, max-age=31536000, immutable"
        # The file of the earlier state is still what its URL names.
        again = http.get(f"/d/{MARKET}/{PRICED}.usdz?state={old['hash']}")
        assert again.content == old["path"].read_bytes()
    path = old["path"].with_name("changed.usdz")
    path.write_bytes(new.content)
    assert arkit_problems(path) == []
    assert "€5.90 / kg" in dict(root_data(path)["prices"])["TOM-BRANDY"]
    assert part_texture(path, "tomato-price").tobytes() != \
        part_texture(old["path"], "tomato-price").tobytes()


def test_cache_etag_and_unknown_displays(live, usdz):
    quicklook = live.app.state.services.quicklook
    made = quicklook.generated["usdz"]
    entry = usdz["bijenhof-honey"]
    etag = entry["response"].headers["etag"]
    assert entry["response"].headers["content-type"] == "model/vnd.usdz+zip"
    with live.client() as http:
        r = http.get(f"/d/{MARKET}/bijenhof-honey.usdz")  # no state: the current one
        assert r.status_code == 200 and r.headers["cache-control"] == "no-cache"
        assert r.headers["etag"] == etag and r.content == entry["path"].read_bytes()
        r = http.get(f"/d/{MARKET}/bijenhof-honey.usdz", headers={"if-none-match": etag})
        assert r.status_code == 304
        # A state hash no longer (or never) known: the current file, by redirect.
        r = http.get(f"/d/{MARKET}/bijenhof-honey.usdz?state={'0' * 64}")
        assert r.status_code == 307 and r.headers["location"].endswith(entry["hash"])
        assert quicklook.generated["usdz"] == made  # all from the cache
        for url in (f"/d/{MARKET}/no-such-stall.usdz", "/d/no-market/bijenhof-honey.usdz",
                    f"/d/{MARKET}/no-such-stall.glb"):
            r = http.get(url)
            assert r.status_code == 404 and "no display" in r.json()["detail"], url


def test_concurrent_first_requests_generate_once(live):
    quicklook = live.app.state.services.quicklook
    made = quicklook.generated["glb"]

    def fetch(_: int) -> bytes:
        with httpx.Client(base_url=live.url, timeout=30) as http:
            r = http.get(f"/d/{MARKET}/{UNTOUCHED}.glb")
            assert r.status_code == 200 and r.headers["content-type"] == "model/gltf-binary"
            return r.content

    with ThreadPoolExecutor(8) as pool:
        bodies = list(pool.map(fetch, range(8)))
    assert quicklook.generated["glb"] == made + 1
    assert len(set(bodies)) == 1 and bodies[0][:4] == b"glTF"
    metrics = httpx.get(f"{live.url}/metrics", timeout=10).text
    assert f'holobazaar_quicklook_files_made_total{{kind="glb"}} {made + 1}.0' in metrics


IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
          "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1")
ANDROID_FIREFOX = "Mozilla/5.0 (Android 14; Mobile; rv:128.0) Gecko/128.0 Firefox/128.0"
DESKTOP = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
           "Chrome/126.0 Safari/537.36")


def test_the_page_offers_the_handoff_by_user_agent_without_javascript(live, usdz):
    def links(ua: str) -> dict[str, str]:
        with live.client() as http:
            html = http.get(f"/d/{MARKET}/{PRICED}", headers={"user-agent": ua}).text
        found = re.findall(r'<a id="ar-(quicklook|sceneviewer)"([^>]*)>', html)
        return {kind: attrs for kind, attrs in found}

    iphone = links(IPHONE)
    assert "hidden" not in iphone["quicklook"] and 'rel="ar"' in iphone["quicklook"]
    assert "#callToAction=About%20this%20stall&amp;checkoutTitle=Tuinderij%20Zonneveld" \
        in iphone["quicklook"]
    assert "hidden" in iphone["sceneviewer"]
    android = links(ANDROID_FIREFOX)
    assert "hidden" not in android["sceneviewer"] and "hidden" in android["quicklook"]
    assert "intent://arvr.google.com/scene-viewer/1.2?mode=ar_preferred" in android["sceneviewer"]
    assert f"file=http%3A%2F%2F127.0.0.1%3A{live.settings.port}%2Fd%2F{MARKET}%2F{PRICED}.glb" \
        in android["sceneviewer"]
    desktop = links(DESKTOP)
    assert all("hidden" in attrs for attrs in desktop.values())


def test_a_model_that_cannot_be_converted_is_left_out_and_named(usdz, tmp_path, caplog):
    entry = usdz[PRICED]
    state = copy.deepcopy(entry["state"])
    broken = f"/assets/{'e' * 64}.glb"  # the crate's file is broken, the rest as stored
    state["nodes"]["crate"]["src"] = broken
    real: dict[str, bytes | None] = {}

    def read(url: str) -> bytes | None:
        if url == broken:
            return b"glTF\x02\x00\x00\x00 broken"
        if url not in real:
            real[url] = httpx_get(url)
        return real[url]

    def httpx_get(url: str) -> bytes | None:
        r = httpx.get(f"{live_url}{url}", timeout=10)
        return r.content if r.status_code == 200 else None

    live_url = entry["response"].url.scheme + "://" + entry["response"].url.netloc.decode()
    with caplog.at_level(logging.WARNING, logger="holobazaar.quicklook.compose"):
        comp = compose(state, entry["hash"], read)
    assert [p.name for p in comp.parts if p.name == "crate"] == []
    assert len(comp.left_out) == 1 and comp.left_out[0].startswith("crate (crate): ")
    assert any("crate (crate) left out" in r.getMessage() for r in caplog.records)
    assert any(p.kind == "model" for p in comp.parts)  # the other models are in
    path = tmp_path / "without-crate.usdz"
    write_usdz(comp, path)
    assert arkit_problems(path) == []
    assert list(root_data(path)["left_out"]) == comp.left_out


def test_a_pipeline_output_meshopt_and_quantized_is_decoded(tmp_path):
    """The asset pipeline writes meshopt-compressed, quantized GLBs: they are decoded to a
    plain copy (tools/gltf/plain.mjs) and keep their shape and texture."""
    import subprocess

    from holobazaar.assets.pipeline.gltf import node_binary
    from holobazaar.quicklook.compose import convert_model
    from holobazaar.quicklook.models import Composition, Part

    from support.gltf import TOOLS, corpus_entry

    source = corpus_entry("Duck")
    packed = tmp_path / "duck-meshopt.glb"
    subprocess.run([node_binary(), "node_modules/@gltf-transform/cli/bin/cli.js", "meshopt",
                    str(source), str(packed)], cwd=TOOLS, check=True, capture_output=True,
                   timeout=60)
    head = packed.read_bytes()[:4000]
    assert b"EXT_meshopt_compression" in head and b"KHR_mesh_quantization" in head
    plain, decoded = convert_model(source.read_bytes()), convert_model(packed.read_bytes())
    assert len(decoded) == len(plain) == 1 and decoded[0].texture is not None
    low, high = plain[0].positions.min(axis=0), plain[0].positions.max(axis=0)
    assert np.allclose(decoded[0].positions.min(axis=0), low, atol=(high - low).max() / 500)
    assert np.allclose(decoded[0].positions.max(axis=0), high, atol=(high - low).max() / 500)
    comp = Composition("m", "d", "Duck", "0" * 64,
                       parts=[Part("duck", "model", np.diag([0.01, 0.01, 0.01, 1]), decoded)])
    path = tmp_path / "duck.usdz"
    write_usdz(comp, path)
    assert arkit_problems(path) == []


def test_a_page_in_another_language_links_its_own_languages_file(live, usdz, tmp_path):
    with live.client() as http:
        page = http.get(f"/d/{MARKET}/{PRICED}", headers={"user-agent": IPHONE,
                                                          "accept-language": "nl"}).text
        assert '<html lang="nl"' in page
        dutch = re.search(rf"/d/{MARKET}/{PRICED}\.usdz\?state=([0-9a-f]{{64}})", page)[1]
        english = http.get(f"/api/v1/displays/{MARKET}/{PRICED}/state").json()["state_hash"]
        assert dutch != english
        r = http.get(f"/d/{MARKET}/{PRICED}.usdz?state={dutch}")
        assert r.status_code == 200  # found among the display's channels, not redirected
    path = tmp_path / "nl.usdz"
    path.write_bytes(r.content)
    data = root_data(path)
    assert data["state"] == dutch and data["title"] != root_data(usdz[PRICED]["path"])["title"]
    assert arkit_problems(path) == []


def test_a_ktx2_model_gets_png_textures(tmp_path):
    """KTX2 (Basis Universal) textures, which Quick Look does not show, are transcoded to
    PNG in the plain copy (tools/gltf/plain.mjs) instead of the model being left out."""
    import subprocess
    import zipfile as zf

    from holobazaar.assets.pipeline.gltf import node_binary
    from holobazaar.quicklook.compose import convert_model
    from holobazaar.quicklook.models import Composition, Part

    from support.gltf import TOOLS, corpus_entry

    packed = tmp_path / "lamp.glb"
    subprocess.run([node_binary(), "node_modules/@gltf-transform/cli/bin/cli.js", "copy",
                    str(corpus_entry("AnisotropyBarnLamp-KTX2")), str(packed)], cwd=TOOLS,
                   check=True, capture_output=True, timeout=60)
    assert b"KHR_texture_basisu" in packed.read_bytes()[:20000]
    surfaces = convert_model(packed.read_bytes())
    textured = [s for s in surfaces if s.texture is not None]
    assert textured and max(textured[0].texture.size) == 1024
    path = tmp_path / "lamp.usdz"
    write_usdz(Composition("m", "d", "Lamp", "0" * 64,
                           parts=[Part("lamp", "model", np.eye(4), surfaces)]), path)
    assert arkit_problems(path) == []
    with zf.ZipFile(path) as package:
        assert any(n.endswith((".png", ".jpg")) for n in package.namelist())
