"""Every inventory state renders: the stall page while a change is held (by the hold
policy or the circuit breaker), while the feed is stale, after an item is removed.

A held item's state has `price: null` + `notice` (docs/inventory.md); the page must show
"Price at the stall", never the old or the new price, and never answer 500."""

from __future__ import annotations

import re
import time

from .conftest import MARKET, display_state, start_inventory_server
from support.waiting import wait_for

ZONNEVELD = "zonneveld-greens"
BAD_TEXT = ("None", "null", "NaN", "undefined", "€null", "UndefinedError", "Traceback")


def page(live, display: str = ZONNEVELD) -> str:
    with live.client() as client:
        response = client.get(f"/d/{MARKET}/{display}")
    assert response.status_code == 200, response.text[:2000]
    return response.text


def product(html: str, sku: str) -> str:
    """The visible text of one product line of the fallback list."""
    found = re.search(rf'<li data-sku="{re.escape(sku)}"[^>]*>(.*?)</li>', html, re.S)
    assert found is not None, f"{sku} is not listed"
    return " ".join(re.sub(r"<[^>]+>", " ", found.group(1)).split())


def visible(html: str) -> str:
    """The page without its boot JSON and scripts (what a visitor reads)."""
    return re.sub(r"<script.*?</script>", "", html, flags=re.S)


def assert_clean(html: str) -> None:
    text = visible(html)
    for bad in BAD_TEXT:
        assert bad not in text, f"{bad!r} on the page"


def test_held_price_change_page_shows_price_at_the_stall(inv) -> None:
    live, feed = inv
    result = feed.push({"sku": "TOM-BRANDY", "price": "65.00"})  # x10: held
    assert result["held"] == 1
    assert display_state(live, ZONNEVELD)["items"]["TOM-BRANDY"]["price"] is None
    html = page(live)
    line = product(html, "TOM-BRANDY")
    assert "Price at the stall" in line
    assert "6.50" not in line and "65.00" not in line
    assert "€" not in line
    assert_clean(html)
    # The other items keep their prices.
    assert "€2.80" in product(html, "CAR-NANTES")


def test_circuit_breaker_every_display_answers_200(inv) -> None:
    live, feed = inv
    with live.client() as client:
        skus = [i["sku"] for i in client.get(f"/api/v1/markets/{MARKET}/items").json()]
        displays = [d["id"] for d in client.get(f"/api/v1/markets/{MARKET}/displays").json()]
    result = feed.push(*[{"sku": sku, "stock": 0, "status": "sold_out"} for sku in skus])
    assert result["circuit_breaker"] is True
    for display in displays:
        html = page(live, display)
        assert_clean(html)
        for sku, item in display_state(live, display)["items"].items():
            if item.get("notice"):
                line = product(html, sku)
                assert "Price at the stall" in line and "€" not in line
                # A held stock change: the stock shown is still the confirmed one.
                assert "Sold out" not in line or item["status"] == "sold_out"
    with live.client() as client:
        market = client.get(f"/m/{MARKET}")
    assert market.status_code == 200
    assert_clean(market.text)


def test_stale_feed_marks_prices_unverified(tmp_path) -> None:
    live, feed = start_inventory_server(tmp_path, inventory_stale_after=0.3)
    try:
        feed.push({"sku": "TOM-BRANDY", "stock": 17})
        time.sleep(0.4)
        wait_for(lambda: display_state(live, ZONNEVELD)["items"]["TOM-BRANDY"].get(
            "verified") is False)
        html = page(live)
        line = product(html, "TOM-BRANDY")
        assert "€6.50" in line and "Unverified" in line
        assert_clean(html)
    finally:
        live.stop()


def test_removed_item_leaves_the_page_and_its_price_boards(inv) -> None:
    live, feed = inv
    feed.push({"op": "remove", "sku": "LET-BUTTER"})
    state = display_state(live, ZONNEVELD)
    assert "LET-BUTTER" not in state["items"]
    html = page(live)
    assert 'data-sku="LET-BUTTER"' not in html
    assert_clean(html)
    # Nodes bound to the removed item are hidden, not drawn with an empty label.
    bound = [n for n in state["nodes"].values() if n["item"] == "LET-BUTTER"]
    assert bound and all(n["visible"] is False for n in bound)
