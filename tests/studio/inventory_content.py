"""A market for the inventory and truth pages: alpha with a few items of two farms (one
with four_eyes when asked), beta with one item; displays bound to the items."""

from __future__ import annotations

from pathlib import Path

from support.live import LiveServer, start_server

MARKET = """\
format: 1
market: {{id: {m}, name: Market {m}, currency: EUR}}
zones: [{{id: hall, name: Hall}}]
farms:
  - {{id: hill-farm, name: Hill Farm}}
  - {{id: river-farm, name: River Farm}}
items:
  - {{sku: APL-1, name: Apples, price: "2.50", unit: kg, stock: 10, farm: hill-farm}}
  - {{sku: PEAR-1, name: Pears, price: "3.00", unit: kg, stock: 4, farm: hill-farm}}
  - {{sku: HON-1, name: Honey, price: "8.00", unit: jar, stock: 0, status: sold_out,
     farm: river-farm}}
"""
DISPLAY = """\
format: 1
display:
  id: stall
  zone: hall
  title: Stall
  items: [APL-1, PEAR-1]
  nodes:
    - {id: price, kind: text, item: APL-1, text: "price"}
"""


def write_content(root: Path, four_eyes: bool = False) -> Path:
    for m in ("alpha", "beta"):
        folder = root / "scenes" / m / "displays"
        folder.mkdir(parents=True, exist_ok=True)
        text = MARKET.format(m=m)
        if four_eyes and m == "alpha":
            text += "four_eyes: true\n"
        (folder.parent / "market.yaml").write_text(text)
        (folder / "stall.yaml").write_text(DISPLAY)
    (root / "assets").mkdir(exist_ok=True)
    return root


def start(root: Path, four_eyes: bool = False, **settings) -> LiveServer:
    settings.setdefault("hold_price_change", 20.0)
    return start_server(root, content_dir=write_content(root / "content", four_eyes),
                        watch=False, **settings)


def configure_feed(live: LiveServer, market: str = "alpha") -> str:
    """A webhook secret for `market` (the reconciler reloads the feed): returns it."""
    from holobazaar.inventory.feed_routes import new_secret

    secret = new_secret(live.app.state.services.engine, market, "tests")  # type: ignore[attr-defined]
    live.call(live.app.state.services.reconciler.reload_feed, market)  # type: ignore[attr-defined]
    return secret


def push(live: LiveServer, secret: str, *events: dict, market: str = "alpha") -> dict:
    """Sign and push a batch as a stock system does."""
    import json
    import time
    import uuid

    from holobazaar.inventory.feeds import sign

    body = json.dumps({"events": list(events)}).encode()
    ts, key = str(int(time.time())), uuid.uuid4().hex
    with live.client() as client:
        response = client.post(f"/api/v1/inventory/{market}/events", content=body, headers={
            "X-Holobazaar-Timestamp": ts, "Idempotency-Key": key,
            "X-Holobazaar-Signature": sign(secret, ts, key, body),
            "Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    return response.json()
