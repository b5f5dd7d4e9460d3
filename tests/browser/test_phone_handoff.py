"""Phones without WebXR AR (#22): an iPhone (Safari's AR Quick Look emulated: Chromium has no
`rel="ar"`) gets the Quick Look link to the display's USDZ and the link follows a price
change to the new state's file; Android without WebXR AR (Firefox's User-Agent) gets the
Scene Viewer intent with the display's GLB; a desktop keeps the inline view only. One
page per device class, in its own browser context."""

from __future__ import annotations

import io
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import trimesh

from browser_content import BROKEN_DISPLAY, DISPLAY, MARKET, save_artifact
from conftest import PageProbe

IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
          "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1")
ANDROID_FIREFOX = "Mozilla/5.0 (Android 14; Mobile; rv:128.0) Gecko/128.0 Firefox/128.0"
# Safari on iOS answers relList.supports('ar') with true: what model-viewer checks.
QUICK_LOOK = """(() => {
  const supports = DOMTokenList.prototype.supports;
  DOMTokenList.prototype.supports = function (token) {
    return token === 'ar' ? true : supports.call(this, token);
  };
})();"""
READY = "window.__holo && window.__holo.handoff !== undefined"


def open_display(browser, user_agent: str | None, url: str, quick_look: bool = False):
    options = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 1}
    if user_agent:
        options["user_agent"] = user_agent
    context = browser.new_context(**options)
    if quick_look:
        context.add_init_script(QUICK_LOOK)
    probe = PageProbe(context.new_page())
    probe.page.goto(url)
    probe.wait(READY)
    return context, probe


def usdz_data(content: bytes, folder: Path) -> dict:
    """The file's `holobazaar` customData (prices, state, models left out)."""
    from pxr import Usd

    path = folder / f"read-{len(list(folder.glob('read-*')))}.usdz"
    path.write_bytes(content)
    stage = Usd.Stage.Open(str(path))
    return dict(stage.GetDefaultPrim().GetCustomDataByKey("holobazaar"))


def current_hash(http) -> str:
    return http.get(f"/api/v1/displays/{MARKET}/{DISPLAY}/state").json()["state_hash"]


@pytest.mark.browser
def test_iphone_quick_look_android_scene_viewer_desktop_inline(market_server, browser, tmp_path):
    page_url = f"{market_server.url}/d/{MARKET}/{DISPLAY}"
    http = market_server.client()
    first = current_hash(http)

    # iPhone: the Quick Look link (one <img> child), to this state's USDZ, banner in the URL.
    context, probe = open_display(browser, IPHONE, page_url, quick_look=True)
    page = probe.page
    link = page.locator("#ar-quicklook")
    assert link.is_visible() and not page.locator("#ar-sceneviewer").is_visible()
    assert not page.locator("#enter-ar").is_visible()
    assert page.evaluate("document.getElementById('ar-quicklook').children.length") == 1
    assert page.locator("#ar-quicklook > img").count() == 1
    href = link.get_attribute("href")
    assert href.startswith(f"/d/{MARKET}/{DISPLAY}.usdz?state={first}#callToAction=")
    fragment = dict(map(unquote, p.split("=", 1)) for p in urlsplit(href).fragment.split("&"))
    assert fragment == {"callToAction": "About this stall",
                        "checkoutTitle": "Sunny Acres & Sons stall",
                        "checkoutSubtitle": "Today's prices · Test Market"}
    assert probe.hook()["handoff"] == {"mode": "quicklook", "state": first}
    save_artifact("phone-handoff-iphone-390x844.png", page.screenshot())
    # A price change through the inventory API: the link names the new state's file.
    r = http.patch(f"/api/v1/markets/{MARKET}/items/TOM-1", json={"price": "3.75"},
                   headers=market_server.write_headers)
    assert r.status_code == 200, r.text
    probe.wait(f"window.__holo.handoff.state !== '{first}'", timeout=5000)
    second = current_hash(http)
    assert probe.hook()["handoff"]["state"] == second != first
    href = link.get_attribute("href")
    assert href.startswith(f"/d/{MARKET}/{DISPLAY}.usdz?state={second}#callToAction=")
    usdz = http.get(href.split("#")[0])
    assert usdz.status_code == 200 and usdz.headers["content-type"] == "model/vnd.usdz+zip"
    assert usdz_data(usdz.content, tmp_path)["prices"]["TOM-1"].startswith(
        "Brandywine tomatoes: €3.75 / kg")
    assert probe.errors == []
    context.close()

    # Android without WebXR AR: the Scene Viewer intent with the whole display as one GLB.
    context, probe = open_display(browser, ANDROID_FIREFOX, page_url)
    page = probe.page
    assert page.locator("#ar-sceneviewer").is_visible()
    assert not page.locator("#ar-quicklook").is_visible()
    intent = page.locator("#ar-sceneviewer").get_attribute("href")
    match = re.fullmatch(r"intent://arvr\.google\.com/scene-viewer/1\.2\?mode=ar_preferred"
                         r"&title=[^&]+&file=([^#]+)#Intent;scheme=https;"
                         r"package=com\.google\.android\.googlequicksearchbox;"
                         r"action=android\.intent\.action\.VIEW;"
                         r"S\.browser_fallback_url=([^;]+);end;", intent)
    assert match, intent
    glb_url = unquote(match[1])
    assert glb_url == f"{market_server.url}/d/{MARKET}/{DISPLAY}.glb?state={second}"
    assert unquote(match[2]) == f"{page_url}#no-ar-fallback"
    glb = http.get(glb_url)
    assert glb.status_code == 200 and glb.headers["content-type"] == "model/gltf-binary"
    scene = trimesh.load(io.BytesIO(glb.content), file_type="glb", force="scene")
    assert len(scene.graph.nodes_geometry) >= 5  # model, labels, image, panel, farm card
    assert probe.hook()["handoff"]["mode"] == "sceneviewer" and probe.errors == []
    context.close()

    # Desktop: the inline view only.
    context, probe = open_display(browser, None, page_url)
    assert probe.hook()["handoff"]["mode"] is None
    assert not probe.page.locator("#ar-quicklook").is_visible()
    assert not probe.page.locator("#ar-sceneviewer").is_visible()
    assert probe.errors == []
    context.close()

    # A display whose model file is broken: its USDZ without that model, never a 500.
    r = http.get(f"/d/{MARKET}/{BROKEN_DISPLAY}.usdz")
    assert r.status_code == 200
    left_out = list(usdz_data(r.content, tmp_path)["left_out"])
    assert len(left_out) == 1 and left_out[0].startswith("bad-model (broken): ")
