"""AR placement under IWER (issue 19): only a level surface at counter height takes the
display (a wall and the floor are refused), the reticle goes once placed, the display keeps
its real size, the overlay is one compact line, and "Move" and "Reset" do what they say."""

from __future__ import annotations

from browser_content import AIM_FLOOR, AIM_TABLE, AIM_WALL, DISPLAY, MARKET, aim

READY = "window.__holo && window.__holo.ready && window.__holo.frames >= 2"
TAP = "(el) => el.click()"  # the overlay's DOM click: the fallback of an XR select


def overlay_share(page) -> float:
    """The part of the view the overlay's visible boxes cover."""
    return page.evaluate("""() => {
      const root = document.getElementById('xr-overlay');
      let area = 0;
      for (const el of root.children) {
        if (el.hidden || getComputedStyle(el).display === 'none') continue;
        const r = el.getBoundingClientRect();
        area += r.width * r.height;
      }
      return area / (innerWidth * innerHeight);
    }""")


def test_wall_refused_table_accepted_reticle_hidden_move_and_reset(market_server, probe):
    page = probe.page
    page.goto(f"{market_server.url}/d/{MARKET}/{DISPLAY}?xr-emulate=1")
    probe.wait(READY)
    page.get_by_role("button", name="View in AR").click()
    probe.wait("window.__holo.phase === 'ar' && window.__holo.hitFrames >= 3")
    overlay = page.locator("#xr-overlay")

    # A wall straight ahead: refused, no reticle, a tap places nothing.
    check = aim(page, AIM_WALL)
    assert check["ok"] is False and check["why"] == "not level", check
    assert probe.hook()["reticleVisible"] is False
    overlay.evaluate(TAP)
    probe.wait("window.__holo.refusedTaps >= 1")
    assert probe.hook()["placed"] is False
    assert "Not a counter" in page.locator("#xr-hint").inner_text()
    # The floor is level but no counter.
    check = aim(page, AIM_FLOOR)
    assert check["ok"] is False and check["why"] == "not at counter height", check

    # The desk top: level, 0.76 m up. The reticle shows and a tap places the display there.
    check = aim(page, AIM_TABLE)
    assert check["ok"] is True and 0.6 < check["height"] < 0.9, check
    assert probe.hook()["reticleVisible"] is True
    probe.wait("document.getElementById('xr-hint').textContent === "
               "'Tap to place'")  # after the refusal's message
    overlay.evaluate(TAP)
    probe.wait("window.__holo.placed === true")
    start = probe.hook()["hitFrames"]
    probe.wait(f"window.__holo.hitFrames >= {start + 3}")
    hook = probe.hook()
    assert hook["reticleVisible"] is False, "the reticle stays drawn over the placed display"
    assert all(abs(v - 1) < 1e-6 for v in hook["placedScale"])  # scene metres: real size
    assert abs(hook["lastHit"][1] - 0.76) < 0.1

    # Compact overlay: one line, Move and Reset offered, well under 20% of the view.
    assert page.locator("#xr-details").is_hidden()
    assert page.locator("#xr-move").is_visible() and page.locator("#xr-reset").is_visible()
    bar = page.locator("#xr-overlay .bar").bounding_box()
    assert bar["height"] <= 60, bar
    assert overlay_share(page) <= 0.2
    page.locator("#xr-more").evaluate(TAP)
    assert page.locator("#xr-details").is_visible()
    page.locator("#xr-more").evaluate(TAP)
    assert page.locator("#xr-details").is_hidden()

    # Placed, a tap does not move it; "Move" does (the reticle comes back), on the desk.
    placed_at = page.evaluate("sessionStorage.getItem('holobazaar:placement:"
                              f"{MARKET}/{DISPLAY}')")
    aim(page, (45, -40))  # another spot on the desk
    overlay.evaluate(TAP)
    probe.wait(f"window.__holo.hitFrames >= {probe.hook()['hitFrames'] + 3}")
    assert page.evaluate(f"sessionStorage.getItem('holobazaar:placement:{MARKET}/{DISPLAY}')") \
        == placed_at
    page.locator("#xr-move").evaluate(TAP)
    probe.wait("window.__holo.phase === 'moving' && window.__holo.reticleVisible === true")
    overlay.evaluate(TAP)
    probe.wait("window.__holo.phase === 'placed'")
    assert page.evaluate(f"sessionStorage.getItem('holobazaar:placement:{MARKET}/{DISPLAY}')") \
        != placed_at

    # Reset forgets the placement: nothing shown, nothing stored, placing again.
    page.locator("#xr-reset").evaluate(TAP)
    probe.wait("window.__holo.placed === false")
    assert page.evaluate(f"sessionStorage.getItem('holobazaar:placement:{MARKET}/{DISPLAY}')") \
        is None
    assert page.locator("#xr-move").is_hidden()
    page.evaluate("window.__holo.stop()")
