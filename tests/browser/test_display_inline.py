"""The display page in a real browser without AR: inline 3D view, accessible fallback,
bad input (unknown display, broken model, malformed frames), first-visit figures."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from browser_content import BROKEN_DISPLAY, DISPLAY, MARKET, NODE_COUNT, save_artifact

READY = "window.__holo && window.__holo.ready && window.__holo.frames >= 5"
MODELS_DONE = ("window.__holo.nodes > 0 && "
               "!document.getElementById('progress') || document.getElementById('progress').hidden")


def screenshot_array(page) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(page.screenshot())).convert("RGB")).astype(int)


def test_inline_view_renders_the_display(market_server, probe):
    page = probe.page
    page.goto(f"{market_server.url}/d/{MARKET}/{DISPLAY}")
    probe.wait(READY)
    probe.wait(MODELS_DONE)
    probe.wait("window.__holo.frames >= 10")
    hook = probe.hook()
    assert hook["phase"] == "inline"
    assert hook["nodes"] == NODE_COUNT[DISPLAY]
    assert page.evaluate("window.__holo.sceneNodeCount()") == NODE_COUNT[DISPLAY]
    assert page.evaluate("window.__holo.placeholders()") == []
    # Without an XR runtime the AR button stays hidden and the inline view is all there is.
    assert hook["arSupported"] is False
    assert page.locator("#enter-ar").is_hidden()

    shot = page.screenshot()
    save_artifact("inline-view.png", shot)
    pixels = np.asarray(Image.open(io.BytesIO(shot)).convert("RGB")).astype(int)
    box = page.locator(".stage").bounding_box()
    stage = pixels[int(box["y"]):int(box["y"] + box["height"]), :]
    assert stage.std() > 10, "the 3D view looks blank"
    red = (stage[..., 0] > stage[..., 1] + 60) & (stage[..., 0] > stage[..., 2] + 60)
    assert red.sum() > 50, "the tomato model is not visible"
    yellow = (stage[..., 0] > 200) & (stage[..., 1] > 170) & (stage[..., 2] < 120)
    assert yellow.sum() > 20, "the price text is not visible"


def test_first_visit_figures(market_server, probe):
    page = probe.page
    page.goto(f"{market_server.url}/d/{MARKET}/{DISPLAY}")
    probe.wait(READY)
    probe.wait(MODELS_DONE)
    figures = page.evaluate("""() => {
      const nav = performance.getEntriesByType('navigation')[0];
      const res = performance.getEntriesByType('resource');
      const by = {};
      for (const r of res) {
        const kind = r.name.includes('/assets/') ? 'models+images' : r.name.includes('/client/')
          ? 'client' : 'other';
        by[kind] = (by[kind] || 0) + r.transferSize;
      }
      return {
        html_bytes: nav.transferSize,
        resource_bytes: res.reduce((a, r) => a + r.transferSize, 0),
        decoded_bytes: nav.decodedBodySize + res.reduce((a, r) => a + r.decodedBodySize, 0),
        by_kind: by,
        requests: res.length + 1,
        dom_content_loaded_ms: nav.domContentLoadedEventEnd,
        first_frame_ms: window.__holo.firstFrameMs,
      };
    }""")
    figures["total_bytes"] = figures["html_bytes"] + figures["resource_bytes"]
    save_artifact("first-visit.json", figures)
    print(f"\nfirst visit: {figures['total_bytes']} bytes transferred in "
          f"{figures['requests']} requests; first frame at {figures['first_frame_ms']:.0f} ms")
    assert figures["first_frame_ms"] > 0
    # gzip on /client/: three.js + troika travel as ~250 kB, not ~800 kB.
    assert figures["total_bytes"] < 600_000



def test_accessible_fallback_lists_products_and_prices(market_server, probe):
    # The fallback is rendered by the server: check it without JavaScript too.
    html = market_server.client().get(f"/d/{MARKET}/{DISPLAY}").text
    assert "Brandywine tomatoes" in html and "€4.50" in html and "€2.00" in html
    # The inventory name holds a <script>: it must arrive as text, never as markup.
    assert "<script>alert(1)</script>" not in html
    assert "Basil &lt;script&gt;alert(1)&lt;/script&gt;" in html
    # Compositor text is already escaped once: not double-escaped ("&amp;amp;").
    assert "Sunny Acres &amp; Sons stall" in html and "&amp;amp;" not in html

    page = probe.page
    page.goto(f"{market_server.url}/d/{MARKET}/{DISPLAY}")
    probe.wait(READY)
    products = page.locator("#products li")
    assert products.count() == 2
    # The list (#fallback), then reactions, then the rest (#about): prices come first.
    text = "\n".join(page.locator("#fallback, #about").all_inner_texts())
    assert "Brandywine tomatoes" in text and "€4.50" in text and "In stock (40)" in text
    assert "Basil <script>alert(1)</script>" in text  # shown literally, not executed
    assert page.locator("#fallback script").count() == 0
    assert "Three generations on the hill." in text
    assert page.locator("h1").inner_text() == "Sunny Acres & Sons stall"


def test_unknown_display_and_market_give_404_with_a_way_back(market_server, probe):
    page = probe.page
    response = page.goto(f"{market_server.url}/d/{MARKET}/no-such-stall")
    assert response.status == 404
    link = page.get_by_role("link", name="Back to Test Market")
    assert link.get_attribute("href") == f"/m/{MARKET}"
    link.click()
    page.wait_for_url(f"**/m/{MARKET}")
    assert page.get_by_role("link", name="Sunny Acres & Sons stall").count() == 1
    assert page.get_by_role("link", name="Broken model stall").count() == 1
    assert page.goto(f"{market_server.url}/m/nowhere").status == 404
    assert page.goto(f"{market_server.url}/d/nowhere/x").status == 404
    # The browser logs the 404 responses themselves; they are expected here.
    probe.errors.clear()


def test_broken_model_shows_a_labelled_placeholder(market_server, probe):
    page = probe.page
    page.goto(f"{market_server.url}/d/{MARKET}/{BROKEN_DISPLAY}")
    probe.wait(READY)
    probe.wait("window.__holo.placeholders().length === 1")
    probe.wait(MODELS_DONE)
    hook = probe.hook()
    assert page.evaluate("window.__holo.placeholders()") == ["bad-model"]
    assert hook["nodes"] == NODE_COUNT[BROKEN_DISPLAY]
    assert any("bad-model" in w and "failed to load" in w for w in hook["warnings"])
    label = page.evaluate("""() => {
      let found = null;
      window.__holo.scene.traverse((o) => { if (o.text === 'Broken tomato') found = o.text; });
      return found;
    }""")
    assert label == "Broken tomato"
    # The rest still renders: the good model loaded next to it.
    assert page.evaluate("""() => {
      let loaded = false;
      window.__holo.scene.traverse((o) => {
        if (o.userData.holoId === 'good-model') loaded = Boolean(o.userData.loaded);
      });
      return loaded;
    }""")
    save_artifact("inline-broken-model.png", page.screenshot())
