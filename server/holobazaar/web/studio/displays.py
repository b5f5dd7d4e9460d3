"""Studio section: the market's displays at a glance, /studio/<market>, and /studio, which
sends a staff member to their market (or lets them choose)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from holobazaar.channels import display_channel
from holobazaar.scenes import authoring
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
    problems = scenes.last_problems
    for display_id, display in sorted(content.displays.items()):
        history = authoring.revisions(scenes, market, display_id)
        last = history[0] if history else None
        file = content.display_files.get(display_id, "")
        state = scenes.hub.snapshot(display_channel(market, display_id))[2]
        shown = state.get("display", {}) if isinstance(state, dict) else {}
        rows.append({"id": display_id, "title": shown.get("title") or display_id,
                     "zone": zones.get(getattr(display, "zone", None) or "", ""),
                     "file": file, "items": list(display.items),
                     "assets": sorted(_assets(display)),
                     "edited": (f"{last.actor}, {last.at:%Y-%m-%d %H:%M} UTC"
                                if last else ""),
                     "valid": not (file and file in problems)})
    return page.render("studio/displays.html", {"displays": rows})


def _assets(node) -> set[str]:
    """Asset names a display's nodes use (any depth)."""
    found: set[str] = set()
    data = node.model_dump() if hasattr(node, "model_dump") else node
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if isinstance(item.get("asset"), str):
                found.add(item["asset"])
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found
