"""A copy of the demo content with opening hours and a dayparted bakery display, for the
schedule tests (the demo market itself has neither)."""

from __future__ import annotations

from pathlib import Path

from support.content import copy_content

MARKET = "greenhaven"
DISPLAY = "korenbloem-bakery"
DISPLAY_FILE = f"scenes/{MARKET}/displays/{DISPLAY}.yaml"
MARKET_FILE = f"scenes/{MARKET}/market.yaml"

HOURS = """
hours:
  weekly:
    mon: closed
    tue: "08:00-18:00"
    wed: "08:00-18:00"
    thu: "08:00-18:00"
    fri: ["08:00-12:30", "13:30-21:00"]
    sat: "07:00-17:00"
    sun: "10:00-16:00"
  closed: [2026-12-25]
  exceptions:
    - {date: 2026-12-24, hours: "08:00-15:00", note: Christmas Eve}
"""

SCHEDULE = """
  variants:
    - id: breakfast
      title: "Breakfast at {{ farm.name }}"
      nodes:
        story: {title: Breakfast, body: "Croissants and coffee until eleven."}
    - id: evening
      nodes:
        story: {title: Evening bread, body: "Half price after 19:00."}
        stollen-note: {visible: true, text: "Closes in {{ market.closes_in }} minutes"}
    - id: closed
      title: "{{ farm.name }}: closed"
      nodes:
        story: {title: "Closed", body: "Back {{ market.opens_at }}."}
  schedule:
    - {variant: breakfast, days: [tue, wed, thu, fri, sat, sun], from: "07:00", to: "11:00"}
    - {variant: evening, days: [fri], from: "19:00", to: "21:00"}
    - {variant: closed, market: closed, priority: 10}
"""


SHOW = "market-bell"
SHOW_ZONE = "bakers-lane"
SHOW_FILE = f"""version: 1
show:
  id: {SHOW}
  title: Market bell
  zone: {SHOW_ZONE}
  starts:
    - {{days: [sat], time: "11:00", catch_up: 120}}
    - {{at: 2026-11-04T17:30}}
  cues:
    - number: "1"
      name: Bell
      duration: 30
      actions:
        - {{kind: overlay, title: "Market bell", text: "The harvest starts now."}}
"""


def schedule_content(target: Path, market_extra: str = HOURS,
                     display_extra: str = SCHEDULE) -> Path:
    """The demo content under `target` with `market_extra` appended to market.yaml and
    `display_extra` inserted into the bakery's display (after its `items:` line)."""
    content = copy_content(target)
    market = content / MARKET_FILE
    market.write_text(market.read_text() + market_extra)
    display = content / DISPLAY_FILE
    text = display.read_text()
    marker = "  items: [BRD-SOURDOUGH, BRD-RYE, BRD-SPELT]\n"
    assert marker in text
    display.write_text(text.replace(marker, marker + display_extra.lstrip("\n"), 1))
    (content / "scenes" / MARKET / "shows" / f"{SHOW}.yaml").write_text(SHOW_FILE)
    return content
