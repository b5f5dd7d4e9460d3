"""Pulse in the browser: tapping reactions on a display page (device id, note, the rate
limit's message without a disconnect), and the market page's live zone heatmap."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path

from websockets.sync.client import connect

from browser_content import DISPLAY, MARKET
from support.live import start_server
from support.waiting import wait_for

READY = "window.__holo && window.__holo.ready && window.__holo.stream " \
        "&& window.__holo.stream.connects >= 1"


def test_tapping_reactions_on_a_display_page(market_server, probe) -> None:
    page = probe.page
    page.goto(f"{market_server.url}/d/{MARKET}/{DISPLAY}")
    probe.wait(READY)
    pulse = market_server.app.state.services.pulse
    bar = page.locator("#pulse-bar")
    assert bar.is_visible()
    assert bar.locator("button").all_inner_texts() == ["♥ Love", "✦ Wow", "Hungry",
                                                        "Tell me more"]

    bar.locator("[data-pulse-kind=love]").click()
    wait_for(lambda: pulse.stats["accepted_love"] == 1)
    assert bar.locator(".pulse-status").inner_text() == "Thanks!"
    saved = page.evaluate("JSON.parse(localStorage.getItem('holobazaar.device'))")
    assert re.fullmatch(r"[A-Za-z0-9_-]{16,64}", saved["id"])
    assert saved["day"] == datetime.now(UTC).date().isoformat()

    page.fill("#pulse-note", "Best <b>tomatoes</b> this year")
    bar.locator("[data-pulse-kind=wow]").click()
    wait_for(lambda: pulse.stats["feedback_held"] == 1)
    assert page.input_value("#pulse-note") == ""
    assert "waits for the market team" in bar.locator(".pulse-status").inner_text()

    # A keen visitor: the burst allowance runs out, the page says so and stays connected.
    page.evaluate("""() => {  // eight taps within a millisecond
        const button = document.querySelector('#pulse-bar [data-pulse-kind=hungry]');
        for (let i = 0; i < 8; i += 1) button.click();
    }""")
    probe.wait("window.__holo.pulse.lastError === 'rate_limited'", timeout=5000)
    assert "One reaction a second" in bar.locator(".pulse-status").inner_text()
    hook = probe.hook()
    assert hook["stream"]["connects"] == 1 and hook["pulse"]["sent"] == 10
    # The same device all along: one distinct device for the display today.
    figures = pulse.market_pulse(MARKET).figures("display", DISPLAY, "day", time.time())
    assert figures.devices == 1
    assert figures.counts[0] == 1 and figures.counts[1] == 1  # love, wow
    assert 3 <= figures.counts[2] <= 5  # hungry: the burst allowance (refilling at 1/s)


def test_market_heatmap_follows_the_pulse_channel(tmp_path: Path, probe) -> None:
    # The demo market (it has a map); the 15-minute window refreshed every second.
    live = start_server(tmp_path, pulse_k=2, pulse_slow_interval=1.0, watch=False)
    try:
        page = probe.page
        page.goto(f"{live.url}/m/greenhaven")
        probe.page.wait_for_function("window.__pulseMap && window.__pulseMap.connected",
                                     timeout=10_000)
        rect = page.locator("#pulse-map rect[data-zone=orchard-row]")
        assert rect.get_attribute("fill") == "rgb(47, 58, 45)"
        assert page.locator("#pulse-map rect").count() == 4

        # Playwright's sync API owns this thread's event loop: a sync WebSocket client.
        channel = "market/greenhaven/display/zonneveld-greens"
        with connect(live.ws_url) as ws:
            assert json.loads(ws.recv())["type"] == "welcome"
            ws.send(json.dumps({"type": "hello", "protocol": 1,
                                "subscribe": [{"channel": channel}]}))
            assert json.loads(ws.recv())["type"] == "snapshot"
            for i in range(3):
                ws.send(json.dumps({"type": "reaction", "market": "greenhaven",
                                    "display": "zonneveld-greens", "kind": "love",
                                    "device": f"browser-test-device-{i:03d}"}))
            wait_for(lambda: live.app.state.services.pulse.stats["accepted_love"] == 3)
        probe.page.wait_for_function("window.__pulseMap.zones['orchard-row']", timeout=5000)
        assert rect.get_attribute("fill") == "rgb(255, 170, 40)"  # the busiest zone
        label = page.locator("#pulse-map [data-zone-label=orchard-row]").text_content()
        assert label == "3 reactions · mood 50"
        assert page.locator("#pulse-map [data-zone-label=fungi-grotto]").text_content() == "quiet"
        assert page.locator("#pulse-mood").inner_text() == "Market mood now: 50"
    finally:
        probe.page.goto("about:blank")  # before the server goes: no reconnect attempts
        live.stop()


def test_loving_a_recipe_card_on_a_display_page(tmp_path: Path, probe) -> None:
    # The demo market: its displays show "cook from what's here" recipe cards.
    live = start_server(tmp_path, watch=False)
    try:
        page = probe.page
        page.goto(f"{live.url}/d/greenhaven/zonneveld-greens")
        probe.wait(READY)
        heart = page.locator("nav.stories [data-pulse-recipe]").first
        assert heart.is_visible() and heart.inner_text() == "♥"
        slug = heart.get_attribute("data-pulse-recipe")
        heart.click()
        pulse = live.app.state.services.pulse
        wait_for(lambda: pulse.stats["accepted_recipe"] == 1)
        assert pulse.stats["accepted_love"] == 1
        figures = pulse.market_pulse("greenhaven").figures("recipe", slug, "day", time.time())
        assert figures.devices == 1 and figures.counts[0] == 1
        assert probe.hook()["pulse"]["recipes"] == 1
        assert page.locator("#pulse-bar .pulse-status").inner_text() == "Thanks!"
    finally:
        probe.page.goto("about:blank")
        live.stop()
