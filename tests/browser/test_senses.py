"""Issue #23, visitors with other senses, in Chromium: a show's audio cue shows its caption
in a live region; reduced motion (the system's) makes a tween land at once (fades only);
larger text grows the 3D view's text; the 3D view takes the keyboard; the price list
announces a change once, politely, and a resync says nothing.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from browser_content import DISPLAY, MARKET, set_price, write_content
from support.live import LiveServer, start_server

VIEWPORT = {"width": 480, "height": 640}
READY = ("window.__holo && window.__holo.ready && window.__holo.frames >= 3 "
         "&& window.__holo.clockRtt !== undefined")
SHOW_YAML = """\
show:
  id: senses
  title: Senses test
  zone: row-a
  cues:
    - number: "1"
      name: Bell and glide
      duration: 6
      actions:
        - {kind: audio, tone: 440, volume: 0.2, duration: 4, caption: "[A bell rings]"}
        - {kind: node, display: sunny-stall, node: price-tomato, op: tween,
           position: [-0.15, 0.9, 0], duration: 5, easing: linear}
"""


@pytest.fixture
def server(tmp_path) -> Iterator[LiveServer]:
    content = write_content(tmp_path / "content")
    shows = content / "scenes" / MARKET / "shows"
    shows.mkdir(exist_ok=True)
    (shows / "senses.yaml").write_text(SHOW_YAML)
    live = start_server(tmp_path, content_dir=content, watch=False, show_lead_ms=300)
    yield live
    live.stop()


def test_captions_reduced_motion_larger_text_and_one_announcement(browser,
                                                                  server: LiveServer) -> None:
    context = browser.new_context(viewport=VIEWPORT, service_workers="block")
    moving, still = context.new_page(), context.new_page()
    still.emulate_media(reduced_motion="reduce")
    errors: list[str] = []
    for page in (moving, still):
        page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    for page in (moving, still):
        page.goto(f"{server.url}/d/{MARKET}/{DISPLAY}")
    for page in (moving, still):
        page.wait_for_function(READY, timeout=20_000)
    assert still.evaluate("window.__holo.settings().reducedMotion") is True
    assert still.locator("#setting-reduced-motion").is_checked()
    assert moving.evaluate("window.__holo.settings().reducedMotion") is False

    with server.client() as http:
        response = http.post(f"/api/v1/shows/{MARKET}/senses/go", headers=server.write_headers)
    assert response.status_code == 200, response.text
    for page in (moving, still):
        page.wait_for_selector("#show-captions p", timeout=5000)
        assert page.locator("#show-captions p").inner_text() == "[A bell rings]"
        assert page.locator("#show-captions").get_attribute("aria-live") == "polite"
    # A second into a five-second glide: half-way up the screen, or (reduced) already there.
    y = "window.__holo.scene.getObjectByName('price-tomato').position.y"
    moving.wait_for_function(f"{y} > 0.25", timeout=5000)
    assert moving.evaluate(y) < 0.85
    assert still.evaluate(y) == pytest.approx(0.9)

    # The page's own switch does what the system setting does, and is remembered.
    moving.locator("#setting-reduced-motion").check()
    assert moving.evaluate("window.__holo.settings().reducedMotion") is True
    assert moving.evaluate("document.documentElement.classList.contains('reduced-motion')")
    moving.wait_for_function(f"Math.abs({y} - 0.9) < 1e-3", timeout=2000)  # lands at once
    moving.locator("#setting-reduced-motion").uncheck()

    # Larger text: the page's text and the 3D view's grow.
    page = moving
    before = page.evaluate("window.__holo.layout.minPx")
    page.locator("#setting-large-text").check()
    page.wait_for_function(f"window.__holo.layout.minPx > {before} * 1.25", timeout=10_000)
    assert page.evaluate("document.documentElement.classList.contains('large-text')")
    assert page.evaluate("JSON.parse(localStorage.getItem('holobazaar.view-settings'))"
                         ) == {"reducedMotion": False, "largeText": True}

    # The 3D view from the keyboard: Tab reaches it, arrows turn it, + zooms.
    page.locator("#view canvas").focus()
    assert page.evaluate("document.activeElement.getAttribute('aria-label')")
    pose = page.evaluate("window.__holo.cameraPose()")
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("+")
    assert page.evaluate("window.__holo.cameraPose()") != pose

    # A price change is announced once, politely; a resync of the same state says nothing.
    set_price(server, "3.10")
    page.wait_for_function("document.getElementById('price-announcer').textContent !== ''",
                           timeout=5000)
    assert page.locator("#price-announcer").inner_text() == (
        "Brandywine tomatoes: now €3.10 per kg")
    assert page.locator("#products").get_attribute("aria-live") is None
    page.evaluate("window.__holo.resync()")
    page.wait_for_function("window.__holo.stream.resyncs >= 1", timeout=5000)
    time.sleep(0.5)
    assert page.evaluate("window.__holo.announced()") == ["Brandywine tomatoes: now €3.10 per kg"]
    assert errors == []
    context.close()
