"""The demo market the tests run against (scenes/greenhaven), and the calls they make on it."""

from __future__ import annotations

import httpx

DEMO_MARKET = "greenhaven"
# A price board of the demo market, and the item whose price the tests change.
DEMO_DISPLAY = "zonneveld-greens"
DEMO_SKU = "TOM-BRANDY"
DEMO_CHANNEL = f"market/{DEMO_MARKET}/display/{DEMO_DISPLAY}"


def item_path(sku: str = DEMO_SKU) -> str:
    return f"/api/v1/markets/{DEMO_MARKET}/items/{sku}"


def set_price(url: str, headers: dict[str, str], price: str, sku: str = DEMO_SKU) -> dict:
    """Change an item's price through the API, confirmed (so never held)."""
    response = httpx.patch(f"{url}{item_path(sku)}", json={"price": price, "confirm": True},
                           timeout=10, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def aset_price(http: httpx.AsyncClient, price: str, sku: str = DEMO_SKU, url: str = "",
                     headers: dict[str, str] | None = None) -> None:
    """`set_price` on an async client (`url` empty: the client's base URL)."""
    response = await http.patch(f"{url}{item_path(sku)}", json={"price": price, "confirm": True},
                                headers=headers)
    assert response.status_code == 200, response.text


def display_state(url: str, display: str = DEMO_DISPLAY) -> dict:
    """What `GET .../state` answers for a display of the demo market: state and its hash."""
    response = httpx.get(f"{url}/api/v1/displays/{DEMO_MARKET}/{display}/state", timeout=10)
    assert response.status_code == 200, response.text
    return response.json()
