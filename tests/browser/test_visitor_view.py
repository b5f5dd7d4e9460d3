"""The display page as a visitor on a phone and a laptop uses it (issue 19): the 3D view
lets the page scroll (touch swipe, unfocused wheel), turns with the arrow keys once focused,
resets, and the first prices are on the first screen; the accessible list says each thing
once with grammatical units. One server over the demo market for the whole module."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import PageProbe
from support.content import REPO
from support.live import LiveServer, start_server

DEMO = "greenhaven"
STALL = "zonneveld-greens"  # a price board, "each" units, a story and recipes
READY = "window.__holo && window.__holo.ready && window.__holo.frames >= 3"
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 1,
         "has_touch": True, "is_mobile": True}


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory) -> Iterator[LiveServer]:
    live = start_server(Path(tmp_path_factory.mktemp("demo")), watch=False)
    yield live
    live.stop()


@pytest.fixture
def visit(browser, demo_server):
    contexts = []

    def open_page(path: str, cpu_slowdown: float = 0, **options) -> PageProbe:
        context = browser.new_context(**({"viewport": {"width": 1024, "height": 768},
                                          "device_scale_factor": 1} | options))
        contexts.append(context)
        probe = PageProbe(context.new_page())
        if cpu_slowdown:  # a busy phone: few frames, so eased motion lasts long
            context.new_cdp_session(probe.page).send("Emulation.setCPUThrottlingRate",
                                                     {"rate": cpu_slowdown})
        probe.page.goto(demo_server.url + path)
        if path.startswith("/d/"):
            # Slowed down, a wide display laid out as authored and then in rows (its text
            # would be under 9 px as placed: layout.js) takes longer to settle.
            probe.wait(READY, timeout=15_000 * max(1.0, cpu_slowdown / 2))
        return probe

    yield open_page
    for context in contexts:
        context.close()


def pose(probe: PageProbe) -> list[float]:
    return probe.page.evaluate("window.__holo.cameraPose()")


def moved(a: list[float], b: list[float]) -> float:
    return math.dist(a[:3], b[:3])


def test_touch_swipe_scrolls_the_page_and_sideways_turns(visit) -> None:
    probe = visit(f"/d/{DEMO}/{STALL}", **PHONE)
    page = probe.page
    box = page.locator("#view canvas").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    before = pose(probe)
    cdp = page.context.new_cdp_session(page)

    def swipe(x: float, y: float, dx: float, dy: float) -> None:
        # Raw touch input goes through the browser's gesture handling (touch-action);
        # Input.synthesizeScrollGesture does not, so it cannot tell the two apart.
        cdp.send("Input.dispatchTouchEvent", {"type": "touchStart",
                                               "touchPoints": [{"x": x, "y": y}]})
        for i in range(1, 11):
            cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [
                {"x": x + dx * i / 10, "y": y + dy * i / 10}]})
        cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})

    # A one-finger upward swipe that starts on the 3D view scrolls the page.
    swipe(cx, cy + 60, 0, -250)
    page.wait_for_function("window.scrollY > 100")
    assert moved(before, pose(probe)) < 1e-3, "a vertical swipe turned the view"
    page.evaluate("window.scrollTo(0, 0)")
    page.wait_for_function("window.scrollY === 0")
    # A sideways drag turns the display and leaves the page where it is.
    swipe(cx + 120, cy, -220, 0)
    page.wait_for_function("(b) => { const p = window.__holo.cameraPose(); "
                           "return Math.hypot(p[0] - b[0], p[2] - b[2]) > 0.01; }", arg=before)
    assert page.evaluate("window.scrollY") == 0
    assert probe.errors == []


def test_first_prices_on_the_first_phone_screen(visit) -> None:
    probe = visit(f"/d/{DEMO}/{STALL}", **PHONE)
    first = probe.page.locator("#products li .price").first.bounding_box()
    assert first["y"] + first["height"] <= 844, first
    assert probe.page.locator("#reset-view").is_visible()
    assert probe.hook()["viewer"]["hint"] is True  # first load: the interaction hint


def test_wheel_scrolls_unless_focused_then_keys_turn_and_reset_restores(visit) -> None:
    # CPU slowed 4x: the turn still easing out when Reset is pressed must not carry on
    # after it (it did under a loaded CI: the view settled beside its framing).
    probe = visit(f"/d/{DEMO}/{STALL}", viewport={"width": 1024, "height": 640},
                  cpu_slowdown=4)
    page = probe.page
    canvas = page.locator("#view canvas")
    assert canvas.get_attribute("tabindex") == "0"
    assert "Tuinderij Zonneveld" in canvas.get_attribute("aria-label")
    home = pose(probe)
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.wheel(0, 300)
    page.wait_for_function("window.scrollY > 0")
    assert moved(home, pose(probe)) < 1e-3, "the wheel zoomed an unfocused view"

    page.evaluate("window.scrollTo(0, 0)")
    canvas.focus()
    assert page.evaluate("document.activeElement.tagName") == "CANVAS"
    for _ in range(3):
        page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowUp")
    page.wait_for_function(f"(() => {{ const p = window.__holo.cameraPose(); "
                           f"return Math.hypot(p[0] - {home[0]}, p[2] - {home[2]}) > 0.05; }})()")
    assert page.evaluate("window.scrollY") == 0, "arrow keys scrolled the page"
    assert probe.hook()["viewer"]["keyTurns"] == 4
    # Focused, the wheel zooms instead of scrolling.
    page.mouse.wheel(0, 200)
    page.wait_for_timeout(200)
    assert page.evaluate("window.scrollY") == 0

    page.get_by_role("button", name="Reset view").click()
    page.wait_for_function(f"(() => {{ const p = window.__holo.cameraPose(); "
                           f"return Math.hypot(p[0] - {home[0]}, p[1] - {home[1]}, "
                           f"p[2] - {home[2]}) < 0.02; }})()")
    assert probe.errors == []


def test_accessible_list_says_each_thing_once(visit) -> None:
    probe = visit(f"/d/{DEMO}/{STALL}")
    page = probe.page
    rows = page.locator("#products li").all_inner_texts()
    text = "\n".join(rows)
    assert "per each" not in text
    assert any("€4.00" in r and "each" in r for r in rows), rows  # "€4.00 each"
    assert any("€3.20" in r and "per bunch" in r for r in rows), rows
    listed = page.locator("#fallback, #about").all_inner_texts()
    body = "\n".join(listed)
    assert "Today at the stall" not in body  # the price board repeats the list above
    assert body.count("Cook from what's here") == 1
    assert "member stall" not in body  # image alt text is not a paragraph
    assert page.locator(".image-alt").count() == 0
    for name in ("Cavolo nero kale", "Potimarron pumpkin"):
        assert body.count(name) == 1, name
    practices = "certified organic (SKAL)"
    assert body.count(practices) == 1
    # In order: prices, then the farm, then its story (with its link), then recipes.
    order = [body.index(s) for s in ("Products", "Tuinderij Zonneveld", "Read the full story",
                                     "Cook from what's here")]
    assert order == sorted(order)
    assert probe.errors == []


AXE = REPO / "web-client" / "node_modules" / "axe-core" / "axe.min.js"
VISITOR_PAGES = ("/", f"/m/{DEMO}", f"/m/{DEMO}?zone=fungi-grotto", f"/d/{DEMO}/{STALL}",
                 "/s/tomatoes-in-the-cold-tunnel", "/r/shakshuka-with-herbs")


@pytest.mark.parametrize("viewport", [(390, 844), (1440, 900)], ids=["phone", "desktop"])
def test_axe_finds_no_serious_violation_on_visitor_pages(visit, demo_server, viewport) -> None:
    if not AXE.is_file():
        pytest.skip("axe-core not installed: cd web-client && npm ci")
    width, height = viewport
    found = {}
    probe = visit("/", viewport={"width": width, "height": height})
    for path in VISITOR_PAGES:
        probe.page.goto(demo_server.url + path)
        if path.startswith("/d/"):
            probe.wait(READY)
        probe.page.add_script_tag(path=str(AXE))
        result = probe.page.evaluate("axe.run(document, {resultTypes: ['violations']})")
        bad = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
               for v in result["violations"] if v["impact"] in ("serious", "critical")]
        if bad:
            found[path] = bad
    assert found == {}
    assert probe.errors == []
