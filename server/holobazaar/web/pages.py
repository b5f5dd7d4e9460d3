"""HTML pages (Jinja2). The visitor pages of the WebXR client live here too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.templating import Jinja2Templates
from starlette.responses import HTMLResponse

from holobazaar.scenes.service import display_channel, zone_channel
from holobazaar.scenes.templates import money, price_label, stock_label, stock_text
from holobazaar.stream.hub import UnknownChannel

router = APIRouter(include_in_schema=False)
# The reaction bar's buttons (holobazaar.pulse.aggregator.KINDS, in that order).
PULSE_KINDS = (("love", "♥ Love"), ("wow", "✦ Wow"), ("hungry", "Hungry"),
               ("learn", "Tell me more"))
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
templates.env.globals.update(money=money, stock_label=stock_label, price_label=price_label,
                             stock_text=stock_text)


@router.get("/", response_class=HTMLResponse)
def index(request: Request) -> HTMLResponse:
    scenes = request.app.state.scenes
    markets = scenes.content.markets.values() if scenes.content else []
    return templates.TemplateResponse(request, "index.html", {"markets": markets})


def _not_found(request: Request, message: str, market: Any = None) -> HTMLResponse:
    return templates.TemplateResponse(request, "not_found.html",
                                      {"message": message, "market": market}, status_code=404)


@router.get("/m/{market}", response_class=HTMLResponse)
def market_page(request: Request, market: str) -> HTMLResponse:
    scenes = request.app.state.scenes
    found = scenes.market(market)
    if found is None:
        return _not_found(request, "There is no market with this address.")
    zones = []
    for zone in found.market.zones:
        displays = []
        for display in sorted(found.displays.values(), key=lambda d: d.id):
            if display.zone != zone.id:
                continue
            _, _, state, _ = scenes.hub.snapshot(display_channel(found.id, display.id))
            displays.append({"id": display.id, "state": state})
        zones.append({"zone": zone, "displays": displays})
    pulse_channel = f"market/{found.id}/pulse"
    try:
        epoch, offset, state, _ = scenes.hub.snapshot(pulse_channel)
    except UnknownChannel:  # a market added a moment ago: pulse publishes it within 1 s
        epoch, offset, state = None, None, None
    return templates.TemplateResponse(request, "market.html", {
        "market": found.market.market, "zones": zones,
        "map_zones": [z for z in found.market.zones if z.map is not None],
        "pulse_k": request.app.state.settings.pulse_k,
        "pulse_boot": {"ws": "/ws", "channel": pulse_channel, "epoch": epoch, "offset": offset,
                       "state": state},
        "pulse_entry": request.app.state.client.entry("src/market.js"),
    })


@router.get("/d/{market}/{display}", response_class=HTMLResponse)
def display_page(request: Request, market: str, display: str) -> HTMLResponse:
    scenes = request.app.state.scenes
    found = scenes.market(market)
    if found is None:
        return _not_found(request, "There is no market with this address.")
    if display not in found.displays:
        return _not_found(request, "This stall has no display here (any more).",
                          found.market.market)
    channel = display_channel(market, display)
    epoch, offset, state, _ = scenes.hub.snapshot(channel)
    nodes = sorted(state.get("nodes", {}).values(), key=lambda n: n.get("order", 0))
    boot = {"market": market, "display": display, "channel": channel, "ws": "/ws",
            "epoch": epoch, "offset": offset, "state": state,
            "zone_channel": zone_channel(market, found.displays[display].zone)}
    client = request.app.state.client
    return templates.TemplateResponse(request, "display.html", {
        "market": found.market.market,
        "state": state,
        "items": list(state.get("items", {}).values()),
        "panels": [n for n in nodes if n.get("kind") == "panel" and n.get("visible", True)],
        "images": [n for n in nodes if n.get("kind") == "image" and n.get("alt")],
        "boot": boot,
        "entry": client.entry("src/display.js", preload=("src/app.js",)),
        "pulse_kinds": PULSE_KINDS,
    })
