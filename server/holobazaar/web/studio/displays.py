"""Studio section: the market's displays at a glance, /studio/<market>, and /studio, which
sends a staff member to their market (or lets them choose)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from holobazaar.channels import display_channel
from holobazaar.scenes import authoring, zones_authoring
from holobazaar.scenes.dependencies import market_or_404
from holobazaar.scenes.models import ImageNode, ModelNode, iter_nodes
from holobazaar.web.services import services
from holobazaar.web.studio.shell import (
    NO_STORE,
    StudioPage,
    first,
    open_page,
    posted,
    signed_in,
    studio_markets,
    templates,
)
from holobazaar.web.studio.thumbnail import asset_thumbnail

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
    return _render(request, page, market, {})


def _render(request: Request, page: StudioPage, market: str, errors: dict[str, str],
            values: dict[str, str] | None = None, status: int = 200) -> Response:
    scenes = services(request).scenes
    content = market_or_404(scenes, market)
    zones = {z.id: z.name for z in content.market.zones}
    rows = []
    problems = scenes.last_problems
    for display_id, display in sorted(content.displays.items()):
        history = authoring.revisions(scenes, market, display_id)
        last = history[0] if history else None
        file = content.display_files.get(display_id, "")
        try:
            etag = authoring.read_source(scenes, market, display_id)[1]
        except authoring.AuthoringError:
            etag = ""
        state = scenes.hub.snapshot(display_channel(market, display_id))[2]
        shown = state.get("display", {}) if isinstance(state, dict) else {}
        picture = _picture(display)
        rows.append({"id": display_id, "title": shown.get("title") or display_id,
                     "zone": zones.get(getattr(display, "zone", None) or "", ""),
                     "zone_id": display.zone,
                     "picture": picture[1] if picture else None,
                     "picture_kind": picture[0] if picture else None,
                     "file": file, "etag": etag, "items": list(display.items),
                     "assets": sorted(_assets(display)),
                     "edited": (f"{last.actor}, {last.at:%Y-%m-%d %H:%M} UTC"
                                if last else ""),
                     "valid": not (file and file in problems)})
    zone_rows, zones_etag = zones_authoring.read_zones(scenes, market)
    response = page.render("studio/displays.html", {
        "displays": rows, "errors": errors, "values": values or {},
        "zones": list(zones.items()), "zone_rows": zone_rows, "zones_etag": zones_etag,
        "shown_by_zone": {z: sum(1 for r in rows if r["zone_id"] == z) for z in zones}})
    response.status_code = status
    return response


@router.post("/studio/{market}/displays", response_class=HTMLResponse)
async def create_display(request: Request, market: str) -> Response:
    checked = await posted(request, market, "displays")
    if isinstance(checked, Response):
        return checked
    page, form = checked
    values = {k: first(form, k).strip() for k in ("id", "title", "zone")}
    errors: dict[str, str] = {}
    if not 1 <= len(values["title"]) <= 200:
        errors["title"] = "Give a title of 1 to 200 characters."
    if not errors:
        try:
            await authoring.create(services(request).scenes, market, values["id"],
                                   values["title"], values["zone"], page.principal.name)
        except authoring.AuthoringError as exc:
            detail = exc.detail
            if isinstance(detail, dict):
                for problem in detail.get("errors", []):
                    field = problem["pointer"].strip("/").split("/")[-1] or "id"
                    errors[field if field in values else "id"] = problem["message"]
            else:
                errors["id"] = str(detail)
        else:
            # Back to the overview (the visual editor, /studio/<m>/displays/<d>, is #18's
            # next step), which names the new display.
            return RedirectResponse(f"/studio/{market}?created={values['id']}",
                                    status_code=303, headers=NO_STORE)
    return _render(request, page, market, errors, values, status=422)


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


@router.post("/studio/{market}/displays/{display}/{action}", response_class=HTMLResponse)
async def change_display(request: Request, market: str, display: str,
                         action: str) -> Response:
    """rename (title) or delete a display from the overview; the form carries the etag
    the page showed, so a change made meanwhile is refused, never overwritten."""
    checked = await posted(request, market, "displays")
    if isinstance(checked, Response):
        return checked
    page, form = checked
    scenes = services(request).scenes
    etag, who = first(form, "etag"), page.principal.name
    errors: dict[str, str] = {}
    try:
        if action == "duplicate":
            new_id = first(form, "id").strip()
            await authoring.duplicate(scenes, market, display, new_id, who)
            return RedirectResponse(f"/studio/{market}?created={new_id}", status_code=303,
                                    headers=NO_STORE)
        if action == "rename":
            doc, _ = authoring.read_source(scenes, market, display)
            doc["display"]["title"] = first(form, "title").strip()[:200]
            await authoring.save_source(scenes, market, display, doc, etag, who)
        elif action == "delete":
            await authoring.delete(scenes, market, display, etag,
                                   first(form, "confirm") == "true", who)
        else:
            return Response(status_code=404)
    except authoring.AuthoringError as exc:
        detail = exc.detail if isinstance(exc.detail, dict) else {"message": exc.detail}
        refs = detail.get("referenced_by")
        message = detail.get("message", "")
        if detail.get("errors"):
            message += ": " + "; ".join(e["message"] for e in detail["errors"])
        if refs:
            message += " Referred to by: " + ", ".join(refs) + "."
        errors["row:" + display] = message
        return _render(request, page, market, errors, status=exc.status)
    return RedirectResponse(f"/studio/{market}", status_code=303, headers=NO_STORE)


def _picture(display) -> tuple[str, str] | None:
    """(kind, asset name) of what a display's thumbnail shows: its first model, else its
    first image; None when it has neither (then the overview says so)."""
    nodes = [node for node, _ in iter_nodes(display.nodes)]
    for kind in (ModelNode, ImageNode):
        found = next((n for n in nodes if isinstance(n, kind)), None)
        if found is not None:
            return found.kind, found.asset
    return None


@router.get("/studio/{market}/displays/{display}/thumbnail.png")
async def display_thumbnail(request: Request, market: str, display: str) -> Response:
    """The thumbnail of a display's first model (or image): the asset pipeline's own for an
    upload, drawn from the file for a content asset; 404 when it has neither."""
    page = await open_page(request, market, "displays")
    if not isinstance(page, StudioPage):
        return page
    scenes = services(request).scenes
    content = market_or_404(scenes, market)
    shown = content.displays.get(display)
    picture = _picture(shown) if shown is not None else None
    if picture is None:
        return Response("no model or image", status_code=404, media_type="text/plain")
    return await asset_thumbnail(request, market, picture[1])


def _map_of(form: dict[str, list[str]]) -> tuple[dict | None, str]:
    """The zone's map rectangle from the form's x, y, w, h (all four, or none)."""
    raw = {k: first(form, k).strip() for k in ("x", "y", "w", "h")}
    if not any(raw.values()):
        return None, ""
    try:
        return {k: float(v) for k, v in raw.items()}, ""
    except ValueError:
        return None, "Give x, y, w and h as numbers (percent of the plan), or leave all four empty."


@router.post("/studio/{market}/zones", response_class=HTMLResponse)
@router.post("/studio/{market}/zones/{zone}", response_class=HTMLResponse)
async def change_zone(request: Request, market: str, zone: str | None = None) -> Response:
    """Create a zone (no `zone`) or change one's name and place on the plan, under the
    market file's etag the page showed."""
    checked = await posted(request, market, "displays")
    if isinstance(checked, Response):
        return checked
    page, form = checked
    scenes = services(request).scenes
    key = f"zone:{zone}" if zone else "newzone"
    values = {k: first(form, k).strip() for k in ("id", "name", "x", "y", "w", "h")}
    rect, problem = _map_of(form)
    if problem:
        return _render(request, page, market, {f"{key}:map": problem},
                       {f"{key}:{k}": v for k, v in values.items()}, status=422)
    fields = {"name": values["name"], "map": rect}
    try:
        if zone is None:
            await zones_authoring.create_zone(scenes, market, {"id": values["id"], **fields})
        else:
            await zones_authoring.update_zone(scenes, market, zone, fields,
                                              first(form, "etag"))
    except authoring.AuthoringError as exc:
        detail = exc.detail if isinstance(exc.detail, dict) else {"message": exc.detail}
        errors: dict[str, str] = {}
        for error in detail.get("errors") or [{"pointer": "", "message": detail["message"]}]:
            field = error["pointer"].strip("/").split("/")[0] or "name"
            field = field if field in ("id", "name", "map") else "map"
            errors.setdefault(f"{key}:{field}", error["message"])
        if exc.status == 412:
            errors = {f"{key}:name": "Someone changed the zones after you opened this page: "
                                     "here they are as they are now. Make your change again."}
            values = {}
        return _render(request, page, market, errors,
                       {f"{key}:{k}": v for k, v in values.items()}, status=exc.status)
    return RedirectResponse(f"/studio/{market}#zones", status_code=303, headers=NO_STORE)
