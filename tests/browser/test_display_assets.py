"""Processed assets in the real browser: a model uploaded through the pipeline (meshopt
geometry, WebP textures) replaces the stall's tomato, loads without a console error, and
each device class fetches its level of detail: desktop the full model, a phone the lighter
one."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from PIL import Image

from browser_content import DISPLAY, MARKET, save_artifact
from support.gltf import CORPUS, corpus_entry

READY = "window.__holo && window.__holo.ready && window.__holo.frames >= 5"
LOADED = """() => {
  let loaded = false;
  window.__holo.scene.traverse((o) => {
    if (o.userData.holoId === 'tomato') loaded = Boolean(o.userData.loaded);
  });
  return loaded;
}"""
FETCHED = """() => performance.getEntriesByType('resource').map((r) => new URL(r.name).pathname)
  .filter((p) => p.startsWith('/assets/'))"""
PHONE = {"viewport": {"width": 390, "height": 700}, "is_mobile": True, "has_touch": True,
         "user_agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) "
                       "AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148"}


@pytest.fixture
def uploaded(market_server) -> dict:
    if not CORPUS.is_dir():
        pytest.skip(f"no glTF corpus at {CORPUS}")
    entry = corpus_entry("Duck")
    with market_server.client() as http:
        response = http.post("/api/v1/assets", headers=market_server.write_headers,
                             files=[("files", (entry.name, entry.read_bytes()))],
                             data={"market": MARKET, "name": "tomato", "size": "0.12"})
        assert response.status_code == 202, response.text
        asset = response.json()
        deadline = time.monotonic() + 60
        while asset["status"] in ("queued", "processing"):
            assert time.monotonic() < deadline
            time.sleep(0.1)
            asset = http.get(f"/api/v1/assets/{asset['id']}").json()
    assert asset["status"] == "ready", asset
    return {f["role"]: f["url"] for f in asset["files"]}


def open_display(market_server, page):
    page.goto(f"{market_server.url}/d/{MARKET}/{DISPLAY}")
    page.wait_for_function(READY, timeout=15_000)
    page.wait_for_function(LOADED, timeout=20_000)
    return page.evaluate(FETCHED)


def test_desktop_loads_the_full_model_with_meshopt_and_webp(market_server, probe, uploaded):
    fetched = open_display(market_server, probe.page)
    assert uploaded["lod0"] in fetched and uploaded["lod1"] not in fetched
    assert probe.page.evaluate("window.__holo.placeholders()") == []
    triangles = probe.page.evaluate("""() => {
      let n = 0;
      window.__holo.scene.traverse((o) => {
        if (o.isMesh && o.geometry.index) n += o.geometry.index.count / 3;
      });
      return n;
    }""")
    assert triangles >= 4212  # the full duck, decoded from meshopt
    shot = probe.page.screenshot()
    save_artifact("display-uploaded-duck-desktop.png", shot)
    pixels = np.asarray(Image.open(io.BytesIO(shot)).convert("RGB")).astype(int)
    box = probe.page.locator(".stage").bounding_box()
    stage = pixels[int(box["y"]):int(box["y"] + box["height"]), :]
    # The duck's WebP texture is yellow; scaled to the curator's 12 cm it fits the stall.
    yellow = (stage[..., 0] > 150) & (stage[..., 1] > 130) & (stage[..., 2] < 90)
    assert 100 < yellow.sum() < 0.5 * yellow.size


def test_phone_loads_the_lighter_level(market_server, browser, uploaded):
    context = browser.new_context(**PHONE)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        fetched = open_display(market_server, page)
        assert uploaded["lod1"] in fetched and uploaded["lod0"] not in fetched
        assert page.evaluate("window.__holo.placeholders()") == []
        save_artifact("display-uploaded-duck-phone.png", page.screenshot())
    finally:
        context.close()
    assert errors == []
