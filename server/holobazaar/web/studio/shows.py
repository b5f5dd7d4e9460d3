"""Studio section: shows (see shell.py for access and navigation). `/studio/<m>/shows` lists
the market's shows; `/studio/<m>/shows/<show>` edits one's cue list on a timeline and
rehearses a cue on the performer's own device. The page works through the authoring API
(/api/v1/markets/{m}/shows/{s}/source, /check, /rehearse; holobazaar.authoring)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, Response

from holobazaar.channels import display_channel
from holobazaar.scenes.authoring import AuthoringError, preview_channel
from holobazaar.scenes.dependencies import market_or_404
from holobazaar.scenes.models import iter_nodes
from holobazaar.shows import authoring, timing
from holobazaar.shows.models import ShowFile
from holobazaar.web.services import services
from holobazaar.web.studio.shell import StudioPage, _problem, open_page

router = APIRouter(include_in_schema=False)


@router.get("/studio/{market}/shows", response_class=HTMLResponse)
async def shows_index(request: Request, market: str) -> Response:
    page = await open_page(request, market, "shows")
    if not isinstance(page, StudioPage):
        return page
    content = market_or_404(services(request).scenes, market)
    zones = {z.id: z.name for z in content.market.zones}
    runners = services(request).shows.runners
    rows = []
    for show_id, show in sorted(content.shows.items()):
        runner = runners.get((market, show_id))
        rows.append({"id": show_id, "title": show.title,
                     "zone": zones.get(show.zone or "", "every zone"), "cues": len(show.cues),
                     "status": runner.status() if runner else "ready",
                     "length": round(timing.total_length_ms(show) / timing.MS)})
    return page.render("studio/shows.html", {"shows": rows})


def form_schema() -> dict[str, Any]:
    """What the page builds its fields from (schemaform.js, with `$defs` for its
    references): the show file's JSON Schema (the loader's models), so a new field in the
    format gets a field without new page code."""
    schema = ShowFile.model_json_schema(by_alias=True)
    defs = schema["$defs"]
    actions = {d["properties"]["kind"]["const"]: d for d in defs.values()
               if "kind" in d.get("properties", {}) and "const" in d["properties"]["kind"]}
    cue = defs["Cue"]
    fields = {k: v for k, v in cue["properties"].items() if k not in ("actions", "group")}
    return {"$defs": defs, "cue": fields, "cue_required": cue.get("required", []),
            "actions": actions}


@router.get("/studio/{market}/shows/{show}", response_class=HTMLResponse)
async def show_editor(request: Request, market: str, show: str) -> Response:
    page = await open_page(request, market, "shows")
    if not isinstance(page, StudioPage):
        return page
    scenes = services(request).scenes
    try:
        doc, etag = authoring.read_show(scenes, market, show)
    except AuthoringError as exc:
        return _problem(request, exc.status, "No such show", str(exc.detail))
    content = market_or_404(scenes, market)
    parsed = content.shows[show]
    zones = {z.id: z.name for z in content.market.zones}
    displays = {d.id: d for d in content.displays.values()
                if parsed.zone is None or d.zone == parsed.zone}
    boot = {
        "market": market, "show": show, "etag": etag, "document": doc,
        "api": f"/api/v1/markets/{market}/shows/{show}",
        "timeline": authoring.cue_timeline(parsed), "schema": form_schema(),
        "displays": {d_id: [n.id for n, _ in iter_nodes(d.nodes)]
                     for d_id, d in sorted(displays.items())},
    }
    hub = scenes.hub
    previews = [{"display": d_id, "title": _live_title(hub, market, d_id),
                 "url": f"/d/{market}/{d_id}?preview=1" + _pass(request, market, d_id)}
                for d_id in sorted(displays)]
    return page.render("studio/show_edit.html", {
        "boot": boot, "boot_json": script_json(boot), "title": parsed.title,
        "zone": zones.get(parsed.zone or "", "every zone"),
        "previews": previews, "file": _file_of(scenes, market, show),
        "entry": services(request).client.entry("src/studio/timeline.js")})


def script_json(data: Any) -> str:
    """JSON for a <script type="application/json"> block, keys in their own order (the
    form follows the models' field order; Jinja's tojson sorts keys) and `<`, `>`, `&`
    escaped so no text in it can close the script element."""
    return (json.dumps(data, ensure_ascii=False).replace("<", "\\u003c")
            .replace(">", "\\u003e").replace("&", "\\u0026"))


def _live_title(hub: Any, market: str, display: str) -> str:
    """The display's title as visitors see it now (it may be a template)."""
    state = hub.snapshot(display_channel(market, display))[2]
    title = state.get("display", {}).get("title") if isinstance(state, dict) else None
    return title or display


def _pass(request: Request, market: str, display: str) -> str:
    """A short-lived pass to the display's preview channel for the performer's own device
    (the display editor's preview links, accounts/preview_links.py): `&link=...`."""
    return "&link=" + services(request).preview_links.mint(preview_channel(market, display))


def _file_of(scenes: Any, market: str, show: str) -> str:
    path = authoring.show_path(scenes, market, show)
    return authoring.relative_name(scenes, path)
