"""Small markets written into a temporary folder, for tests that must not depend on the demo
content (which other work changes): a market of nine displays (markers, TLS), and markets
of one stall each (writes across markets: accounts, assets)."""

from __future__ import annotations

from pathlib import Path

MARKET = "testmarket"
MARKET_NAME = "Riverside Test Market"
# (display id, raw title); one title is a template, rendered from the market's data.
DISPLAYS = [
    ("honey-stall", "Bees & Honey of {{ market.name }}"),
    ("apple-barn", "The Apple Barn"),
    ("cheese-cave", "Cheese Cave"),
    ("herb-garden", "Herb Garden"),
    ("bread-oven", "Wood-fired Bread"),
    ("fish-dock", "Smoked Fish Dock"),
    ("mushroom-log", "Mushroom Log"),
    ("tea-house", "Tea House"),
    ("olive-press", "Olive Press"),
]


def rendered_title(raw: str) -> str:
    return raw.replace("{{ market.name }}", MARKET_NAME)


def write_small_market(root: Path, displays: int = len(DISPLAYS)) -> Path:
    folder = root / "scenes" / MARKET
    (folder / "displays").mkdir(parents=True, exist_ok=True)
    (folder / "market.yaml").write_text(
        f"format: 1\nmarket:\n  id: {MARKET}\n  name: {MARKET_NAME}\n"
        "zones:\n  - id: hall\n    name: Hall\n", encoding="utf-8")
    for display_id, title in DISPLAYS[:displays]:
        (folder / "displays" / f"{display_id}.yaml").write_text(
            f"format: 1\ndisplay:\n  id: {display_id}\n  zone: hall\n  title: \"{title}\"\n"
            "  nodes:\n    - id: sign\n      kind: text\n      text: \"{{ display.id }}\"\n",
            encoding="utf-8")
    return root


# One stall per market, showing the price of its one item (`{m}`: the market's id).
STALL_MARKET = """\
format: 1
market: {{id: {m}, name: Market {m}, currency: EUR}}
zones: [{{id: hall, name: Hall}}]
items:
  - {{sku: APL-1, name: Apples, price: "2.50", unit: kg, stock: 10}}
"""
STALL_DISPLAY = """\
format: 1
display:
  id: stall
  zone: hall
  title: Stall
  items: [APL-1]
  nodes:
    - {id: price, kind: text, item: APL-1, text: "price"}
"""


def write_stall_markets(root: Path, markets: tuple[str, ...] = ("alpha", "beta")) -> Path:
    for m in markets:
        folder = root / "scenes" / m / "displays"
        folder.mkdir(parents=True, exist_ok=True)
        (folder.parent / "market.yaml").write_text(STALL_MARKET.format(m=m))
        (folder / "stall.yaml").write_text(STALL_DISPLAY)
    (root / "assets").mkdir(exist_ok=True)
    return root
