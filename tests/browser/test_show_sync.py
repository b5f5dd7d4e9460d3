"""A live show in headless Chromium: three display pages of one zone run the same cue
within 30 ms of each other (by their own server-time estimate and by the wall clock they
share), report it in their heartbeats (the console's spread), a late joiner lands mid-cue,
overlay text stays plain text, and panic restores the display."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from browser_content import DISPLAY, MARKET, write_content
from support.live import LiveServer, start_server

# Small pages: three software-rendered WebGL pages share two busy cores, and a long frame
# delays a cue's timer. Throttling flags: all three pages must count as in the foreground.
VIEWPORT = {"width": 240, "height": 320}
# tests/browser/conftest.py's FLAGS (what works on these machines), plus ours.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--use-angle=swiftshader", "--enable-unsafe-swiftshader"]
EXTRA_FLAGS = ["--disable-background-timer-throttling", "--disable-renderer-backgrounding",
               "--disable-backgrounding-occluded-windows"]


class PageProbe:
    """A page and the errors it logged (like conftest's probe, one per browser context)."""

    def __init__(self, page) -> None:
        self.page = page
        self.errors: list[str] = []
        page.on("console", lambda m: m.type == "error" and "Three.js" not in m.text
                and "GPU stall" not in m.text and "software WebGL" not in m.text
                and self.errors.append(f"{m.text} {m.location.get('url')}"))
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))

    def wait(self, condition: str, timeout: float = 15_000) -> None:
        try:
            self.page.wait_for_function(condition, timeout=timeout)
        except PlaywrightTimeout:
            # Say which part of the condition never held (clock, frames, offset...).
            state = self.page.evaluate(
                "JSON.stringify(window.__holo && {ready: window.__holo.ready, frames: "
                "window.__holo.frames, clockRtt: window.__holo.clockRtt, "
                "offset: window.__holo.offset})")
            raise AssertionError(f"{condition} did not hold within {timeout:g} ms; "
                                 f"page state {state}; errors {self.errors}") from None

ZONE_CHANNEL = f"market/{MARKET}/zone/row-a"
BASE = f"/api/v1/shows/{MARKET}/sync"
SHOW_YAML = """\
show:
  id: sync
  title: Sync test
  zone: row-a
  cues:
    - number: "1"
      name: Bloom
      duration: 3
      actions:
        - {kind: mood, dim: 0.5, tint: "#203040"}
        - {kind: overlay, title: "Hello", text: "<b>plain</b> text"}
        - {kind: node, display: sunny-stall, node: price-tomato, op: tween,
           position: [0, 0.9, 0], duration: 2, easing: linear}
    - number: "2"
      name: Vanish
      actions:
        - {kind: node, display: sunny-stall, node: price-tomato, op: hide}
"""
READY = ("window.__holo && window.__holo.ready && window.__holo.frames >= 5 "
         f"&& window.__holo.clockRtt <= 20 && window.__holo.offset['{ZONE_CHANNEL}'] >= 0")
# A late joiner is only checked to land mid-tween (a 2 s tween): a clock within ±50 ms
# does; a loaded machine's loopback may not give it a 20 ms round trip in time.
READY_LATE = READY.replace("clockRtt <= 20", "clockRtt <= 100")


@pytest.fixture
def show_server(tmp_path: Path) -> Iterator[LiveServer]:
    content = write_content(tmp_path / "content")
    shows = content / "scenes" / MARKET / "shows"
    shows.mkdir()
    (shows / "sync.yaml").write_text(SHOW_YAML)
    live = start_server(tmp_path, content_dir=content, watch=False, show_lead_ms=400)
    yield live
    live.stop()


def open_pages(browser, live: LiveServer, count: int, ready: str = READY) -> list[PageProbe]:
    probes = []
    for _ in range(count):
        context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
        probe = PageProbe(context.new_page())
        probe.page.goto(f"{live.url}/d/{MARKET}/{DISPLAY}")
        probes.append(probe)
    for probe in probes:
        # The clock offset is as good as its shortest round trip: on a loaded test machine
        # the first samples can take hundreds of ms; the client keeps sampling.
        probe.wait(ready, timeout=40_000)
    return probes


@pytest.fixture
def show_browser(browser):
    """Its own Chromium (the session one checks Chromium and the build and skips or fails
    with the how-to), with the anti-throttling flags."""
    own = browser.browser_type.launch(executable_path="/usr/bin/chromium", headless=True,
                                      args=[*FLAGS, *EXTRA_FLAGS])
    yield own
    own.close()


def test_three_pages_run_a_cue_within_30_ms(show_browser, show_server: LiveServer):
    browser = show_browser
    probes = open_pages(browser, show_server, 3)
    try:
        # Three firings (stop and stand by in between); each page runs each once. On a
        # loaded 2-core machine one firing can be hit by the OS not scheduling a renderer
        # in time, so the figure asserted is the median of three (all are printed).
        spreads = []
        for attempt in range(3):
            with show_server.client() as http:
                if attempt:
                    for op in ("stop", "standby"):
                        assert http.post(f"{BASE}/{op}",
                                         headers=show_server.write_headers).status_code == 200
                response = http.post(f"{BASE}/go", headers=show_server.write_headers)
            assert response.status_code == 200, response.text
            for probe in probes:
                probe.wait(f"window.__holo.show.executed.length >= {attempt + 1}", timeout=5000)
            runs = [probe.page.evaluate(f"window.__holo.show.executed[{attempt}]")
                    for probe in probes]
            assert len({r["id"] for r in runs}) == 1
            estimated = [r["executedAt"] for r in runs]
            wall = [r["wallAt"] for r in runs]
            spreads.append((max(estimated) - min(estimated), max(wall) - min(wall)))
        print("\nshow cue in 3 pages, spread by server-time estimate / wall clock (ms): "
              + ", ".join(f"{e:.1f} / {w:.0f}" for e, w in spreads))
        assert sorted(e for e, _ in spreads)[1] <= 30
        assert sorted(w for _, w in spreads)[1] <= 30

        page = probes[0].page
        page.wait_for_selector("#show-overlay:not([hidden])", timeout=2000)
        assert page.locator("#show-overlay p").inner_text() == "<b>plain</b> text"
        assert page.locator("#show-overlay b").count() == 0
        assert page.evaluate("window.__holo.show.moodNow.dim") == pytest.approx(0.5)

        # The console's figure comes from the pages' heartbeats.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with show_server.client() as http:
                state = http.get(BASE, headers=show_server.write_headers).json()
            if state["sync"] and state["sync"]["devices"] == 3:
                break
            time.sleep(0.1)
        assert state["sync"]["devices"] == 3, state["sync"]
        assert state["sync"]["spread_ms"] <= 30
        assert state["devices"] == 3

        # A late joiner lands mid-tween: its node is part-way, like everyone else's.
        late = open_pages(browser, show_server, 1, READY_LATE)[0]
        probes.append(late)
        late.wait("window.__holo.show.cues.size === 1")
        y_late = late.page.evaluate(
            "window.__holo.show.display.entries.get('price-tomato').object.position.y")
        assert 0 < y_late < 0.9
        assert late.page.evaluate("window.__holo.show.executed.length") == 0  # no re-run

        with show_server.client() as http:
            assert http.post(f"{BASE}/panic",
                             headers=show_server.write_headers).status_code == 200
        for probe in probes:
            probe.wait("window.__holo.show.cues.size === 0 && "
                       "document.getElementById('show-mood').hidden", timeout=3000)
        base_y = show_server.call(_base_y, show_server)
        for probe in probes:
            y = probe.page.evaluate(
                "window.__holo.show.display.entries.get('price-tomato').object.position.y")
            assert y == pytest.approx(base_y)
            assert probe.errors == []
    finally:
        for probe in probes:
            probe.page.context.close()


async def _base_y(live: LiveServer) -> float:
    _, _, state, _ = live.app.state.services.hub.snapshot(f"market/{MARKET}/display/{DISPLAY}")
    return state["nodes"]["price-tomato"]["position"][1]


def test_performer_console_on_a_tablet(browser, show_server: LiveServer):
    """Sign in as a performer, open the console, GO with the space bar (twice quickly:
    fires once), watch the devices count and spread, panic with escape."""
    from holobazaar.accounts import service

    service.create_user(show_server.app.state.services.engine, "stagehand", "correct horse battery",
                        ["performer"], [MARKET], actor="test")
    device = open_pages(browser, show_server, 1)[0]  # one visitor in the zone
    context = browser.new_context(viewport={"width": 1024, "height": 768}, has_touch=True)
    console = PageProbe(context.new_page())
    page = console.page
    try:
        page.goto(f"{show_server.url}/perform/{MARKET}/sync")
        assert "/login" in page.url  # not signed in: to the sign-in page and back
        page.fill("#username", "stagehand")
        page.fill("#password", "correct horse battery")
        page.click("button[type=submit]")
        page.wait_for_url(f"**/perform/{MARKET}/sync")
        console.wait("window.__perform && window.__perform.ready")
        assert page.locator("#standby").inner_text() == "1 · Bloom"
        assert page.locator("#cues tr").count() == 2
        console.wait("document.getElementById('devices').textContent === '1'", 5000)

        # Two space presses before any answer (as two consoles at the same moment would):
        # both GOs name the same standing-by cue, so it fires once and one is refused.
        page.evaluate("""() => { for (let i = 0; i < 2; i++) document.dispatchEvent(
            new KeyboardEvent('keydown', {code: 'Space', key: ' ', bubbles: true})); }""")
        console.wait("window.__perform.state.cues.length >= 1", 5000)
        console.wait("window.__perform.posts.length === 2 && "
                     "window.__perform.errors.length === 1", 5000)
        state = page.evaluate("window.__perform.state")
        assert [c["number"] for c in state["cues"]] == ["1"]
        assert "not standing by" in page.evaluate("window.__perform.errors[0]")
        assert page.locator("#standby").inner_text() == "2 · Vanish"
        device.wait("window.__holo.show.executed.length === 1", 5000)
        console.wait("document.getElementById('spread').textContent.includes('1 devices')",
                     8000)
        assert page.locator("#status").inner_text().lower() == "running"

        page.keyboard.press("Escape")
        console.wait("window.__perform.state.status === 'stopped'", 5000)
        device.wait("window.__holo.show.cues.size === 0", 5000)
        assert page.locator("#go").is_disabled()
        page.locator("#cues tr[data-number='2']").tap()
        console.wait("window.__perform.state.status === 'ready'", 5000)
        assert page.locator("#standby").inner_text() == "2 · Vanish"
        # Chrome logs the refused second GO (409) itself, and the sign-in page's missing
        # favicon (not this page's); nothing else may be logged.
        assert [e for e in console.errors
                if "409 (Conflict)" not in e and "/favicon.ico" not in e] == []
        assert device.errors == []
    finally:
        context.close()
        device.page.context.close()


def test_pause_freezes_and_resume_continues_a_tween(show_browser, show_server: LiveServer):
    probe = open_pages(show_browser, show_server, 1)[0]
    y = ("window.__holo.show.display.entries.get('price-tomato').object.position.y")
    try:
        with show_server.client() as http:
            headers = show_server.write_headers
            assert http.post(f"{BASE}/go", headers=headers).status_code == 200
            probe.wait(f"{y} > 0.2", timeout=5000)
            assert http.post(f"{BASE}/pause", headers=headers).status_code == 200
            probe.wait("window.__holo.show.pausedAt !== null", timeout=3000)
            time.sleep(0.6)  # past the pause instant (a lead after the request)
            frozen = probe.page.evaluate(y)
            time.sleep(0.5)
            assert probe.page.evaluate(y) == pytest.approx(frozen)
            assert 0.2 < frozen < 0.9
            assert http.post(f"{BASE}/resume", headers=headers).status_code == 200
            probe.wait(f"{y} > {frozen} + 0.05", timeout=3000)
            probe.wait(f"{y} > 0.89", timeout=5000)  # the tween completes after the pause
        assert probe.errors == []
    finally:
        probe.page.context.close()
