"""Markets for the grower pages: alpha and beta as in inventory_content (Hill Farm: apples
and pears, River Farm: honey), each farm with its own stall display; alpha may let growers
set prices."""

from __future__ import annotations

from pathlib import Path

from studio.inventory_content import MARKET

from support.live import LiveServer, start_server

STALL = """\
format: 1
display:
  id: {id}
  zone: hall
  title: {title}
  farm: {farm}
  items: [{items}]
  nodes:
    - {{id: price, kind: text, item: {first}, text: "price"}}
"""
STALLS = (("hill-stall", "Hill Farm stall", "hill-farm", ["APL-1", "PEAR-1"]),
          ("river-stall", "River Farm stall", "river-farm", ["HON-1"]))


def write_content(root: Path, growers_set_prices: bool = False,
                  four_eyes: bool = False) -> Path:
    for m in ("alpha", "beta"):
        folder = root / "scenes" / m / "displays"
        folder.mkdir(parents=True, exist_ok=True)
        text = MARKET.format(m=m)
        if m == "alpha":
            text += f"growers_set_prices: {'true' if growers_set_prices else 'false'}\n"
            text += f"four_eyes: {'true' if four_eyes else 'false'}\n"
        (folder.parent / "market.yaml").write_text(text)
        for display_id, title, farm, items in STALLS:
            (folder / f"{display_id}.yaml").write_text(STALL.format(
                id=display_id, title=title, farm=farm, items=", ".join(items),
                first=items[0]))
    (root / "assets").mkdir(exist_ok=True)
    return root


def start(root: Path, growers_set_prices: bool = False, four_eyes: bool = False,
          **settings) -> LiveServer:
    settings.setdefault("hold_price_change", 20.0)
    return start_server(root, content_dir=write_content(root / "content", growers_set_prices,
                                                        four_eyes), watch=False, **settings)
