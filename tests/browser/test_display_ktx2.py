"""KTX2 (Basis Universal) textures in the browser (issue 19): a model whose textures the
asset pipeline keeps as KTX2 (AnisotropyBarnLamp-KTX2 from the shared corpus, read in place)
replaces the stall's tomato and renders with GPU-compressed textures, transcoded by the
basis transcoder from our own build (no request leaves the server). A phone loads the lower
level of detail, whose KTX2 textures the pipeline re-encoded (#22), and renders it too."""

from __future__ import annotations

import time

import pytest

from browser_content import DISPLAY, MARKET, save_artifact
from conftest import VIEWPORT, PageProbe
from support.gltf import CORPUS, corpus_entry, side_files

MODEL = "AnisotropyBarnLamp-KTX2"
READY = "window.__holo && window.__holo.ready && window.__holo.frames >= 5"
LOADED = """() => {
  let loaded = false;
  window.__holo.scene.traverse((o) => {
    if (o.userData.holoId === 'tomato') loaded = Boolean(o.userData.loaded || o.userData.failed);
  });
  return loaded;
}"""
TEXTURES = """() => {
  const out = {compressed: 0, other: 0};
  window.__holo.scene.traverse((o) => {
    if (!o.isMesh) return;
    for (const m of [].concat(o.material)) {
      for (const t of [m.map, m.normalMap, m.roughnessMap, m.aoMap]) {
        if (t) out[t.isCompressedTexture ? 'compressed' : 'other'] += 1;
      }
    }
  });
  return out;
}"""


ANDROID = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
           "Chrome/126.0 Mobile Safari/537.36")


def test_ktx2_model_renders_with_compressed_textures(market_server, probe, browser) -> None:
    if not (CORPUS / MODEL).is_dir():
        pytest.skip(f"no {MODEL} in the glTF corpus at {CORPUS}")
    entry = corpus_entry(MODEL)
    files = [("files", (p.name, p.read_bytes())) for p in [entry, *side_files(entry)]]
    with market_server.client() as http:
        response = http.post("/api/v1/assets", headers=market_server.write_headers, files=files,
                             data={"market": MARKET, "name": "tomato", "size": "0.2"})
        assert response.status_code == 202, response.text
        asset = response.json()
        deadline = time.monotonic() + 120
        while asset["status"] in ("queued", "processing"):
            assert time.monotonic() < deadline
            time.sleep(0.2)
            asset = http.get(f"/api/v1/assets/{asset['id']}").json()
    assert asset["status"] == "ready", asset

    page = probe.page
    outside: list[str] = []
    # Blob URLs are the transcoder's worker, made in the page.
    page.on("request", lambda r: r.url.startswith((market_server.url, "blob:", "data:"))
            or outside.append(r.url))
    page.goto(f"{market_server.url}/d/{MARKET}/{DISPLAY}")
    page.wait_for_function(READY, timeout=15_000)
    page.wait_for_function(LOADED, timeout=60_000)
    assert page.evaluate("window.__holo.placeholders()") == [], probe.hook()["warnings"]
    textures = page.evaluate(TEXTURES)
    assert textures["compressed"] >= 1, textures
    fetched = page.evaluate("performance.getEntriesByType('resource').map((r) => r.name)")
    assert any("/client/assets/basis_transcoder" in u and u.endswith(".wasm") for u in fetched)
    assert outside == []
    save_artifact("display-ktx2-barn-lamp.png", page.screenshot())
    page.goto("about:blank")  # or it draws the lamp (software GL) while the phone loads

    # A phone: the lower level, its textures re-encoded (4x smaller at least), still KTX2.
    lods = {f["role"]: f for f in asset["files"]}
    assert lods["lod0"]["bytes"] >= 4 * lods["lod1"]["bytes"], lods
    context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1, is_mobile=True,
                                  has_touch=True, user_agent=ANDROID)
    try:
        phone = PageProbe(context.new_page())
        phone.page.goto(f"{market_server.url}/d/{MARKET}/{DISPLAY}")
        phone.wait(READY)
        phone.page.wait_for_function(LOADED, timeout=60_000)
        assert phone.page.evaluate("window.__holo.placeholders()") == []
        assert phone.page.evaluate(TEXTURES)["compressed"] >= 1
        fetched = phone.page.evaluate(
            "performance.getEntriesByType('resource').map((r) => r.name)")
        assert any(u.endswith(lods["lod1"]["url"]) for u in fetched), fetched
        assert not any(u.endswith(lods["lod0"]["url"]) for u in fetched)
        save_artifact("display-ktx2-barn-lamp-phone.png", phone.page.screenshot())
        assert phone.errors == []
    finally:
        context.close()
