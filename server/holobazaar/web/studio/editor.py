"""Studio section: the visual display editor, /studio/<market>/displays/<display> (#18).

The page is a shell: the editor itself is the `studio` client entry (web-client/src/studio/),
which reads and writes the display through the authoring API (/api/v1/markets/{m}/displays/
{d}/source, .../preview) with the session cookie and the CSRF header. The viewport follows
the display's curators-only preview channel with a preview link minted here, the same pass
the QR code carries to a curator's phone (/d/<m>/<d>?preview=1&link=...)."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

import segno
from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, Response

from holobazaar import db
from holobazaar.accounts.preview_links import PreviewViewer
from holobazaar.assets import service as assets_service
from holobazaar.channels import display_channel
from holobazaar.scenes import authoring
from holobazaar.scenes import schedule as timing
from holobazaar.scenes.dependencies import market_or_404
from holobazaar.web.services import services
from holobazaar.web.studio.shell import StudioPage, open_page, signed_in
from holobazaar.web.studio.thumbnail import asset_thumbnail

router = APIRouter(include_in_schema=False)

# Names a text template may use, offered next to template fields (docs/scene-format.md).
BINDING_NAMES = (
    "item.name", "item.price", "item.unit", "item.status_label", "item.stock",
    "farm.name", "farm.location", "farm.description", "market.name", "display.title",
    "story.title", "story.excerpt", "stories", "recipes_in_stock(3)", "most_loved(3)",
)


def preview_url(request: Request, market: str, display: str, link: str) -> str:
    base = str(request.base_url).rstrip("/")
    return f"{base}/d/{market}/{display}?{urlencode({'preview': 1, 'link': link})}"


def qr_svg(url: str) -> str:
    """The preview link as an inline SVG QR code (segno), dark on white."""
    svg = segno.make(url, error="m").svg_inline(scale=4, dark="#1b1d1f", light="#ffffff",
                                                 title="QR code of the draft preview link")
    return str(svg)


@router.get("/studio/{market}/displays/{display}", response_class=HTMLResponse)
async def editor(request: Request, market: str, display: str) -> Response:
    page = await open_page(request, market, "displays")
    if not isinstance(page, StudioPage):
        return page
    scenes = services(request).scenes
    found = market_or_404(scenes, market)
    if display not in found.displays:
        return page.render("studio/problem.html", {
            "title": "No such display",
            "message": f"{found.market.market.name} has no display {display!r}."}, 404)
    # The view joins the preview channel at once, even when the first draft is refused.
    await ensure_preview_channel(request, market, display)
    link = services(request).preview_links.mint(authoring.preview_channel(market, display))
    url = preview_url(request, market, display, link)
    engine = services(request).engine
    boot = {
        "market": market, "display": display, "ws": "/ws", "token": link,
        "channel": authoring.preview_channel(market, display),
        "source": f"/api/v1/markets/{market}/displays/{display}/source",
        "preview": f"/api/v1/markets/{market}/displays/{display}/preview",
        "revisions": f"/api/v1/markets/{market}/displays/{display}/revisions",
        "schedule": f"/api/v1/markets/{market}/displays/{display}/schedule",
        "timezone": found.market.market.timezone,
        "schema": "/api/v1/schema/scene",
        "upload": "/api/v1/assets",
        "items": f"/api/v1/markets/{market}/items",
        "visitor": f"/d/{market}/{display}",
        "preview_url": url,
        "zones": [{"id": z.id, "name": z.name} for z in found.market.zones],
        "farms": [{"id": f.id, "name": f.name} for f in found.market.farms],
        "assets": library(scenes, market, await db.call(
            engine, assets_service.warnings_by_name, engine, market)),
        "bindings": list(BINDING_NAMES),
    }
    shown = services(request).scenes.hub.snapshot(display_channel(market, display))[2]
    title = (shown.get("display") or {}).get("title") or display
    tz = timing.zone(found.market.market.timezone)
    soon = (scenes.clock.now() + timedelta(hours=1)).astimezone(tz)
    return page.render("studio/editor.html", {
        "schedule_at": soon.strftime("%Y-%m-%dT%H:%M"), "timezone": str(tz),
        "display": display, "title": title, "boot": boot, "preview_link": url, "qr": qr_svg(url),
        "entry": services(request).client.entry("src/studio/editor.js")})


def library(scenes, market: str, warnings: dict[str, list[dict]]) -> list[dict]:
    """The assets a display of the market may name (the loader checks names against them):
    the content's files and the market's ready uploads, each as visitors get it (an upload
    of the same name replaces the file for this market), with its thumbnail and, for an
    upload, what the pipeline noted (its report's warnings, the validator's among them)."""
    refs = scenes.asset_refs(market)
    return [{"name": name, "url": ref.url, "media_type": ref.media_type, "size": ref.size,
             "thumbnail": f"/studio/{market}/assets/{name}/thumbnail.png",
             "notes": [w.get("message") or w.get("code") for w in warnings.get(name, [])]}
            for name, ref in sorted(refs.items())]


@router.get("/studio/{market}/assets/{name}/thumbnail.png")
async def thumbnail(request: Request, market: str, name: str) -> Response:
    page = await open_page(request, market, "displays")
    if not isinstance(page, StudioPage):
        return page
    return await asset_thumbnail(request, market, name)


async def preview_pass(request: Request, market: str, display: str,
                       link: str | None) -> str | None:
    """The pass a /d/<m>/<d>?preview=1 page joins the preview channel with: the QR code's
    link while valid, or a new one for a signed-in curator of the market; None otherwise
    (then the page shows the published display)."""
    links = services(request).preview_links
    channel = authoring.preview_channel(market, display)
    if link:
        viewer = links.viewer(link)
        if isinstance(viewer, PreviewViewer) and viewer.channel == channel:
            return link
    principal = await signed_in(request)
    if principal is None or not principal.allows("curator", market):
        return None
    return links.mint(channel)


async def ensure_preview_channel(request: Request, market: str, display: str) -> str:
    """The preview channel, started with the published state when no draft was sent yet."""
    hub = services(request).scenes.hub
    channel = authoring.preview_channel(market, display)
    if not hub.has_channel(channel):
        await hub.publish(channel, hub.snapshot(display_channel(market, display))[2])
    return channel
