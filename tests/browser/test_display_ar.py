"""An immersive-ar session under IWER (Meta's WebXR emulator, loaded only with
?xr-emulate=1): the AR button appears, hit-test gives a pose, a tap places the display,
frames render, and the placement is remembered for the session."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from browser_content import AIM_TABLE, DISPLAY, MARKET, NODE_COUNT, aim, save_artifact

READY = "window.__holo && window.__holo.ready && window.__holo.frames >= 2"


def test_ar_session_hit_test_tap_to_place(market_server, probe):
    page = probe.page
    page.goto(f"{market_server.url}/d/{MARKET}/{DISPLAY}?xr-emulate=1")
    probe.wait(READY)
    assert probe.hook()["arSupported"] is True
    button = page.get_by_role("button", name="View in AR")
    assert button.is_visible()
    button.click()
    probe.wait("window.__holo.phase === 'ar' || window.__holo.phase === 'placed'")
    frames_at_start = probe.hook()["frames"]
    probe.wait("window.__holo.hitFrames >= 5")
    hook = probe.hook()
    assert "hit-test" in hook["enabledFeatures"]
    assert hook["placed"] is False
    assert hook["lastHit"] is not None and all(abs(v) < 10 for v in hook["lastHit"])

    # Aim at the desk (a wall straight ahead is refused: test_ar_placement.py), then tap
    # the overlay (the DOM fallback of the XR select event): the display is placed.
    assert aim(page, AIM_TABLE)["ok"] is True
    page.locator("#xr-overlay").evaluate("(el) => el.click()")
    probe.wait("window.__holo.placed === true")
    probe.wait(f"window.__holo.frames >= {frames_at_start + 30}")
    hook = probe.hook()
    assert hook["phase"] == "placed" and hook["placedBy"] == "tap"
    assert hook["nodes"] == NODE_COUNT[DISPLAY]
    if "anchors" in hook["enabledFeatures"]:
        probe.wait("window.__holo.anchored === true || window.__holo.warnings.length > 0")
        assert probe.hook()["anchored"] is True, probe.hook()["warnings"]
    saved = page.evaluate(
        f"sessionStorage.getItem('holobazaar:placement:{MARKET}/{DISPLAY}')")
    assert saved and len(saved.strip("[]").split(",")) == 16

    shot = page.screenshot()
    save_artifact("ar-view.png", shot)
    pixels = np.asarray(Image.open(io.BytesIO(shot)).convert("RGB")).astype(int)
    assert pixels.std() > 10, "the AR view looks blank"
    red = (pixels[..., 0] > pixels[..., 1] + 60) & (pixels[..., 0] > pixels[..., 2] + 60)
    assert red.sum() > 20, "the placed tomato model is not visible"

    # Close, then re-enter: the placement comes back from sessionStorage.
    page.locator("#exit-ar").evaluate("(el) => el.click()")
    probe.wait("window.__holo.phase === 'inline'")
    button.click()
    probe.wait("window.__holo.phase === 'placed'")
    assert probe.hook()["restored"] is True
