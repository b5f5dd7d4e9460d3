"""HTML pages (Jinja2). The visitor pages of the WebXR client live here too."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from jinja2 import pass_context
from starlette.responses import HTMLResponse, PlainTextResponse, Response

from holobazaar.channels import display_channel, pulse_channel, zone_channel
from holobazaar.i18n import gettext
from holobazaar.quicklook.handoff import handoff
from holobazaar.scenes import schedule
from holobazaar.scenes.templates import money, stock_label
from holobazaar.stream.channel import UnknownChannel
from holobazaar.web import i18n as page_i18n
from holobazaar.web.services import services
from holobazaar.web.studio.editor import ensure_preview_channel, preview_pass

router = APIRouter(include_in_schema=False)
# The reaction bar's buttons (holobazaar.pulse.aggregator.KINDS, in that order).
PULSE_KINDS = (("love", "♥ Love"), ("wow", "✦ Wow"), ("hungry", "Hungry"),
               ("learn", "Tell me more"))
templates = page_i18n.templates()
router.include_router(page_i18n.router)  # /lang (the picker), /i18n/<lang>.json
# Units read as a quantity ("per bunch"); these name one piece, which reads "each".
_EACH_UNITS = frozenset({"each", "piece", "pc", "pcs", "item", "unit", "ea"})
# The site icon: a leaf in the market's accent colour (no file, no 404).
FAVICON_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64">'
    '<rect width="64" height="64" rx="14" fill="#141a13"/>'
    '<path d="M14 50C14 26 30 12 52 12c0 24-14 40-38 38z" fill="#ffd23f"/>'
    '<path d="M16 48L40 24" stroke="#141a13" stroke-width="4" stroke-linecap="round"/></svg>')


@pass_context
def unit_text(context: Any, item: dict) -> str:
    """The unit after a price: "per bunch", "each" (never "per each"); empty without a
    price (a held price reads "Price at the stall" alone). web-client/src/page.js unitText
    says the same."""
    unit = item.get("unit")
    if item.get("price") is None or not isinstance(unit, str) or not unit.strip():
        return ""
    unit = unit.strip()
    lang = context.get("lang") or "en"
    if unit.lower() in _EACH_UNITS:
        return gettext(lang, "each")
    return unit if unit.lower().startswith("per ") else gettext(lang, "per %(unit)s", unit=unit)


@pass_context
def _price_label(context: Any, item: dict) -> str:
    """templates.price_label in the page's language (web/i18n.py price_text)."""
    return page_i18n.price_text(item, context.get("lang") or "en")


@pass_context
def _stock_text(context: Any, item: dict) -> str:
    """templates.stock_text in the page's language."""
    lang = context.get("lang") or "en"
    label = gettext(lang, stock_label(item.get("status")))
    stock = item.get("stock")
    if isinstance(stock, int) and not isinstance(stock, bool) and item.get("status") != "sold_out":
        return f"{label} ({page_i18n.i18n.format_number(stock, lang)})"
    return label


templates.env.globals.update(money=money, stock_label=stock_label, price_label=_price_label,
                             stock_text=_stock_text, unit_text=unit_text)


# AR Quick Look's link must hold a single <img>: the "View in AR" button is this picture.
AR_BUTTON_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 176 48" width="176" height="48">'
    '<rect width="176" height="48" rx="24" fill="#ffd23f"/>'
    '<g fill="none" stroke="#1a1a1a" stroke-width="2.4" stroke-linejoin="round">'
    '<path d="M22 17l10-5 10 5v13l-10 5-10-5z"/><path d="M22 17l10 5 10-5M32 22v13"/></g>'
    '<text x="52" y="30.5" font-family="system-ui,-apple-system,sans-serif" font-size="17" '
    'font-weight="600" fill="#1a1a1a">View in AR</text></svg>')


@router.get("/ar-button.svg")
def ar_button() -> Response:
    return Response(AR_BUTTON_SVG, media_type="image/svg+xml",
                    headers={"Cache-Control": "public, max-age=86400"})


@router.get("/favicon.ico")
@router.get("/favicon.svg")
def favicon() -> Response:
    return Response(FAVICON_SVG, media_type="image/svg+xml",
                    headers={"Cache-Control": "public, max-age=86400"})


@router.get("/docs", response_class=HTMLResponse)
def api_docs(request: Request) -> Response:
    """Swagger UI from the files the client build copied out of swagger-ui-dist (npm), so
    /docs works with no network (FastAPI's default loads it from a CDN)."""
    base = services(request).client.vendor("swagger-ui")
    if base is None:
        return PlainTextResponse("API docs need the web client build (make setup); the "
                                 "OpenAPI document is at /openapi.json.", status_code=503)
    return get_swagger_ui_html(openapi_url=request.app.openapi_url or "/openapi.json",
                               title="Holobazaar API", swagger_js_url=base + "swagger-ui-bundle.js",
                               swagger_css_url=base + "swagger-ui.css",
                               swagger_favicon_url="/favicon.svg")


def translated_market(market: Any, lang: str) -> Any:
    """The market's info with its name and description in `lang` (as written when it has
    no translation): what a page in that language shows."""
    found = market.translations.get(lang)
    if found is None:
        return market
    return market.model_copy(update={k: v for k, v in found.model_dump().items() if v})


def _said(text: str) -> str:
    return " ".join(text.split()).casefold()


def readable_panels(state: dict, panels: list[dict]) -> list[dict]:
    """The display's panels for the HTML list, saying nothing twice: lines the page already
    says elsewhere (an item's price line, the farm's description or practices, a recipe the
    recipe list names) are left out, a panel with nothing left is dropped, and the grower's
    story panel carries the link to the full story."""
    farm = state.get("farm") or {}
    told = (state.get("bindings") or {}).get("stories") or {}
    said = {_said(farm.get("description") or ""), _said(" · ".join(farm.get("practices") or []))}
    said.update(_said(p) for p in farm.get("practices") or [])
    starts = [_said(i.get("name") or "") for i in (state.get("items") or {}).values()]
    headings = set()
    if told.get("recipes"):
        starts += [_said(r.get("name") or "") for r in told["recipes"]]
        headings.add(_said("Cook from what's here"))
    starts = [s for s in starts if s]
    story = told.get("story") or {}
    out = []
    for panel in panels:
        lines = [line for line in str(panel.get("body") or "").splitlines()
                 if not (_said(line) in said or any(_said(line).startswith(s) for s in starts))]
        body = "\n".join(lines).strip()
        title = str(panel.get("title") or "")
        if not body:
            continue
        is_story = bool(story) and _said(title) == _said(story.get("title") or "")
        story_url = story.get("url") if is_story else None
        out.append({"title": "" if _said(title) in headings else title, "body": body,
                    "story_url": story_url})
    return out


def market_stalls(scenes: Any, found: Any, lang: str | None = None) -> list[dict[str, Any]]:
    """The market's stalls as a visitor sees them: one entry per display, sorted by zone
    order then title, with its live state (from the hub; in `lang` when the market's
    content is offered in it)."""
    zone_order = {z.id: i for i, z in enumerate(found.market.zones)}
    language = page_i18n.content_language(lang, found.market.market) if lang else None
    stalls = []
    for display in found.displays.values():
        name = display_channel(found.id, display.id, language)
        if not scenes.hub.has_channel(name):
            name = display_channel(found.id, display.id)
        _, _, state, _ = scenes.hub.snapshot(name)
        stalls.append({"id": display.id, "zone": display.zone, "state": state,
                       "title": (state.get("display") or {}).get("title") or display.id,
                       "items": list((state.get("items") or {}).values())})
    stalls.sort(key=lambda d: (zone_order.get(d["zone"], 99), d["title"].casefold()))
    return stalls


def market_picture(stalls: list[dict[str, Any]]) -> dict[str, str] | None:
    """The picture that stands for a market: the image its stalls show most (its emblem),
    else none (the page then draws the zone plan)."""
    seen: dict[str, dict[str, Any]] = {}
    for stall in stalls:
        for node in (stall["state"].get("nodes") or {}).values():
            src = node.get("src")
            if node.get("kind") == "image" and isinstance(src, str) and src.startswith("/assets/"):
                entry = seen.setdefault(src, {"src": src, "alt": node.get("alt") or "", "n": 0})
                entry["n"] += 1
    if not seen:
        return None
    best = max(seen.values(), key=lambda e: e["n"])
    return {"src": best["src"], "alt": best["alt"]}


@router.get("/", response_class=HTMLResponse)
def index(request: Request) -> HTMLResponse:
    scenes = services(request).scenes
    markets = []
    for found in (scenes.content.markets.values() if scenes.content else []):
        stalls = market_stalls(scenes, found)
        markets.append({"market": found.market.market, "zones": found.market.zones,
                        "stalls": len(stalls), "picture": market_picture(stalls),
                        "farms": len(found.market.farms)})
    return templates.TemplateResponse(request, "index.html", {"markets": markets})


def _not_found(request: Request, message: str, market: Any = None) -> HTMLResponse:
    return templates.TemplateResponse(request, "not_found.html",
                                      {"message": message, "market": market}, status_code=404)


@router.get("/m/{market}", response_class=HTMLResponse)
def market_page(request: Request, market: str, zone: str | None = None) -> HTMLResponse:
    """The stalls first (filtered to one zone with ?zone=, from the chips or the map, which
    are plain links and work without JavaScript), then the live pulse heatmap."""
    scenes = services(request).scenes
    found = scenes.market(market)
    if found is None:
        return _not_found(request, "There is no market with this address.")
    zone_ids = {z.id for z in found.market.zones}
    chosen = zone if zone in zone_ids else None
    lang = page_i18n.choose(request, found.market.market)
    stalls = market_stalls(scenes, found, lang)
    zones = []
    for z in found.market.zones:
        if chosen is not None and z.id != chosen:
            continue
        zones.append({"zone": z, "displays": [d for d in stalls if d["zone"] == z.id]})
    pulse = pulse_channel(found.id)
    try:
        epoch, offset, state, _ = scenes.hub.snapshot(pulse)
    except UnknownChannel:  # a market added a moment ago: pulse publishes it within 1 s
        epoch, offset, state = None, None, None
    return templates.TemplateResponse(request, "market.html", {
        "market": translated_market(found.market.market, lang), "zones": zones,
        "all_zones": found.market.zones,
        "chosen": chosen, "picture": market_picture(stalls),
        "hours": schedule.hours_summary(found.market, scenes.clock.now()),
        "map_zones": [z for z in found.market.zones if z.map is not None],
        "pulse_k": services(request).settings.pulse_k,
        "pulse_boot": {"ws": "/ws", "channel": pulse, "epoch": epoch, "offset": offset,
                       "state": state},
        "pulse_entry": services(request).client.entry("src/market.js"),
    })


def phone_handoff(request: Request, market: str, display: str, channel: str,
                  market_name: str) -> dict:
    """The AR Quick Look and Scene Viewer links of the state the page shows (`channel`:
    the display's, in the page's language)."""
    _, _, state, state_hash = services(request).scenes.hub.snapshot(channel)
    title = str((state.get("display") or {}).get("title") or display)
    return handoff(request.headers.get("user-agent", ""), str(request.base_url), market,
                   display, state_hash, title, market_name)


@router.get("/d/{market}/{display}", response_class=HTMLResponse)
async def display_page(request: Request, market: str, display: str, preview: bool = False,
                       link: str | None = None) -> HTMLResponse:
    """The display as visitors see it; with ?preview=1 a curator of the market (signed in,
    or holding the editor's preview link) follows the draft on its preview channel."""
    scenes = services(request).scenes
    found = scenes.market(market)
    if found is None:
        return _not_found(request, "There is no market with this address.")
    if display not in found.displays:
        return _not_found(request, "This stall has no display here (any more).",
                          found.market.market)
    lang = page_i18n.choose(request, found.market.market)
    language = page_i18n.content_language(lang, found.market.market)
    channel = display_channel(market, display, language)
    token = await preview_pass(request, market, display, link) if preview else None
    if token is not None:
        channel = await ensure_preview_channel(request, market, display)
    epoch, offset, state, _ = scenes.hub.snapshot(channel)
    nodes = sorted(state.get("nodes", {}).values(), key=lambda n: n.get("order", 0))
    boot = {"market": market, "display": display, "channel": channel, "ws": "/ws",
            "epoch": epoch, "offset": offset, "state": state,
            "zone_channel": zone_channel(market, found.displays[display].zone),
            # The page's language and its messages (web-client/src/i18n.js); the picker
            # switches to another language's channel without a reload.
            "i18n": page_i18n.client_boot(lang), "currency": found.market.market.currency,
            "base_channel": display_channel(market, display),
            "content_languages": found.market.market.languages[1:],
            # The state's "as of" (server clock, ms) and the market's timezone: a page
            # reloaded offline says "prices as of 10:42" in market time (offline.js).
            "server_time": round(time.time() * 1000),
            "timezone": found.market.market.timezone}
    if token is not None:
        boot["token"] = token
    if services(request).settings.xr_emulator:
        boot["xr_emulator"] = True  # tests: ?xr-emulate=1 loads the WebXR emulator
    if token is None:  # phones without WebXR: Quick Look / Scene Viewer (docs/phones.md)
        boot["handoff"] = phone_handoff(request, market, display, channel,
                                        found.market.market.name)
    client = services(request).client
    return templates.TemplateResponse(request, "display.html", {
        "handoff": boot.get("handoff"),
        "preview": "draft" if token is not None else ("refused" if preview else None),
        "market": translated_market(found.market.market, lang),
        "state": state,
        "items": list(state.get("items", {}).values()),
        "panels": readable_panels(state, [n for n in nodes if n.get("kind") == "panel"
                                          and n.get("visible", True)]),
        "boot": boot,
        "entry": client.entry("src/display.js", preload=("src/app.js",)),
        "pulse_kinds": PULSE_KINDS,
    }, headers=page_headers(lang, preview))


def page_headers(lang: str, preview: bool) -> dict[str, str]:
    """The display page's language and what it depends on: the service worker keeps one
    copy per Content-Language (web-client/src/sw.js), HTTP caches key on Vary."""
    headers = {"Content-Language": lang, "Vary": "Accept-Language, Cookie"}
    if preview:
        headers["Cache-Control"] = "no-store"
    return headers
