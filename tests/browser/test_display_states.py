"""One open stall page followed through the inventory states a market goes through: a held
price, the circuit breaker, sold out, a stale feed, a removed item. The live list and the
3D price boards show "Price at the stall" (never the old or the new value), "Unverified",
"Sold out", and drop the removed item; the page logs no console error throughout (the
`probe` fixture fails the test on any)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from holobazaar.inventory.feed_routes import new_secret
from inventory.conftest import Feed

from browser_content import DISPLAY, MARKET, write_content
from support.live import LiveServer, start_server

READY = "window.__holo && window.__holo.ready && window.__holo.frames >= 3"
STALE_AFTER = 2.5  # seconds of feed silence before the market's prices are "unverified"


@pytest.fixture
def fed_server(tmp_path: Path) -> Iterator[tuple[LiveServer, str]]:
    """The test market with a signed feed, a fast sweep, a short staleness TTL and a
    circuit breaker that trips on a batch changing both of its items."""
    live = start_server(tmp_path, content_dir=write_content(tmp_path / "content"),
                        watch=False, reconcile_interval=0.2,
                        inventory_stale_after=STALE_AFTER, breaker_min=2)
    secret = new_secret(live.app.state.services.engine, MARKET, "tests")  # type: ignore[attr-defined]

    async def reload_feed() -> None:
        live.app.state.services.reconciler._reload_feed(MARKET)  # type: ignore[attr-defined]

    live.call(reload_feed)
    yield live, secret
    live.stop()


def push(live: LiveServer, secret: str, *events: dict) -> dict:
    """A signed batch from the market's stock system (the inventory tests' signer)."""
    body = json.dumps({"events": list(events)}).encode()
    response = Feed(live, secret).post(body, market=MARKET)
    assert response.status_code == 200, response.text
    return response.json()


def decide(live: LiveServer, path: str) -> None:
    response = live.client().post(f"/api/v1/reconcile/{MARKET}/{path}",
                                  headers=live.write_headers)
    assert response.status_code == 200, response.text


def line(sku: str, part: str) -> str:
    return f"#products li[data-sku='{sku}'] .{part}"


def test_display_follows_every_inventory_state(fed_server, probe) -> None:
    live, secret = fed_server
    page = probe.page
    page.goto(f"{live.url}/d/{MARKET}/{DISPLAY}")
    probe.wait(READY)
    probe.wait("window.__holo.stream && window.__holo.stream.connects >= 1")

    def wait_text(selector: str, text: str, timeout: float = 5000) -> None:
        probe.wait(f"(document.querySelector({json.dumps(selector)}) || {{}}).textContent "
                   f"=== {json.dumps(text)}", timeout=timeout)

    def wait_board(node: str, text: str, timeout: float = 5000) -> None:
        probe.wait(f"window.__holo.nodeText({json.dumps(node)}) === {json.dumps(text)}",
                   timeout=timeout)

    def listed() -> str:
        return page.locator("#products").inner_text()

    # Normal.
    wait_text(line("TOM-1", "price"), "€4.50")
    assert page.locator(line("TOM-1", "unit")).inner_text() == "per kg"
    assert page.locator(line("TOM-1", "stock")).inner_text() == "In stock (40)"

    # A held price (x10): neither the old nor the new value, on the list and the board.
    assert push(live, secret, {"sku": "TOM-1", "price": "45.00"})["held"] == 1
    wait_text(line("TOM-1", "price"), "Price at the stall")
    wait_board("price-tomato", "price at the stall / kg")
    tomato = page.locator("#products li[data-sku='TOM-1']").inner_text()
    assert "4.50" not in tomato and "45.00" not in tomato and "€" not in tomato
    assert page.locator(line("TOM-1", "unit")).inner_text() == ""
    assert page.locator(line("BAS-1", "price")).inner_text() == "€2.00"
    held = live.client().get(f"/api/v1/reconcile/{MARKET}/held",
                             headers=live.write_headers).json()
    decide(live, f"held/{held[0]['id']}/reject")
    wait_text(line("TOM-1", "price"), "€4.50")
    wait_board("price-tomato", "€4.50 / kg")

    # The circuit breaker: a batch marking every item sold out is held whole; the page
    # shows the notice and the confirmed stock, not the held one.
    result = push(live, secret, {"sku": "TOM-1", "stock": 0, "status": "sold_out"},
                  {"sku": "BAS-1", "stock": 0, "status": "sold_out"})
    assert result["circuit_breaker"] is True
    wait_text(line("BAS-1", "price"), "Price at the stall")
    wait_text(line("TOM-1", "price"), "Price at the stall")
    assert page.locator(line("TOM-1", "stock")).inner_text() == "In stock (40)"
    wait_board("price-basil", "price at the stall")
    # Approved: sold out, prices back.
    decide(live, f"batches/{result['batch']}/approve")
    wait_text(line("TOM-1", "stock"), "Sold out")
    wait_text(line("TOM-1", "price"), "€4.50")
    wait_text(line("BAS-1", "stock"), "Sold out")

    # A stale feed: prices stay, marked "Unverified" on the list and the board.
    wait_text(line("TOM-1", "unverified"), "Unverified", timeout=STALE_AFTER * 1000 + 5000)
    wait_board("price-tomato", "€4.50 (unverified) / kg")
    assert page.locator(line("BAS-1", "unverified")).is_visible()

    # A removed item leaves the list and its 3D nodes are hidden; the feed is live again.
    push(live, secret, {"op": "remove", "sku": "BAS-1"})
    probe.wait("!document.querySelector(\"#products li[data-sku='BAS-1']\")")
    probe.wait("window.__holo.nodeVisible('basil-name') === false "
               "&& window.__holo.nodeVisible('price-basil') === false")
    probe.wait("!document.querySelector(\"#products li[data-sku='TOM-1'] .unverified\")")
    assert probe.hook()["nodes"] > 0

    # Nothing a visitor reads says null/undefined/NaN along the way.
    text = listed() + page.locator("#fallback").inner_text()
    for bad in ("None", "null", "undefined", "NaN"):
        assert bad not in text
