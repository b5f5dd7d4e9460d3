"""Studio section: the market's displays at a glance, /studio/<market>, and /studio, which
sends a staff member to their market (or lets them choose)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from holobazaar.channels import display_channel
from holobazaar.web.studio.shell import NO_STORE, open_page, signed_in, studio_markets, templates

router = APIRouter(include_in_schema=False)


@router.get("/studio", response_class=HTMLResponse)
async def studio_index(request: Request) -> Response:
    principal = await signed_in(request)
    if principal is None:
        return RedirectResponse("/login?next=/studio", status_code=303, headers=NO_STORE)
    markets = studio_markets(request, principal)
    if len(markets) == 1:
        return RedirectResponse(f"/studio/{markets[0][0]}", status_code=303, headers=NO_STORE)
    return templates.TemplateResponse(request, "studio/choose.html",
                                      {"markets": markets, "user": principal.name},
                                      headers=NO_STORE)


@router.get("/studio/{market}", response_class=HTMLResponse)
async def overview(request: Request, market: str) -> Response:
    page = await open_page(request, market, "displays")
    if isinstance(page, Response):
        return page
    scenes = request.app.state.scenes
    content = scenes.market(market)
    zones = {z.id: z.name for z in content.market.zones}
    rows = []
    for display_id, display in sorted(content.displays.items()):
        state = scenes.hub.snapshot(display_channel(market, display_id))[2]
        shown = state.get("display", {}) if isinstance(state, dict) else {}
        rows.append({"id": display_id, "title": shown.get("title") or display_id,
                     "zone": zones.get(getattr(display, "zone", None) or "", ""),
                     "file": content.display_files.get(display_id, "")})
    return page.render("studio/displays.html", {"displays": rows})
