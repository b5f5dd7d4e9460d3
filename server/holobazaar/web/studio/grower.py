"""Studio section: a grower's own page, /studio/<market>/grower.

A grower (role `grower`, scoped to one farm of the market) sees only their farm: their
items' stock (set it, mark an item sold out), prices when the market's
`growers_set_prices` allows it (through the same hold policy as a curator's change: the
confirmation step, four-eyes), their farm's profile, their stories (written in the stories
section, published by a curator) and how visitors react to their stall (the pulse
figures, k-anonymous). Admins and curators open the page for any farm (`?farm=`).

The farm's profile (location, description, practices, photos from the market's image
assets) is saved into `market.yaml` by scenes.farm_authoring (round-trip YAML under the
file's revision: a page older than the file gets a conflict, not an overwrite).

Changes are plain form POSTs (CSRF token), the same inventory service and rules as PATCH
/api/v1/markets/{m}/items/{sku}; an item of another farm is 403 here as on the API.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from holobazaar import db
from holobazaar.inventory import service
from holobazaar.inventory.batches import BatchResult
from holobazaar.inventory.models import ItemUpdate
from holobazaar.scenes import farm_authoring
from holobazaar.scenes.authoring import AuthoringError
from holobazaar.scenes.dependencies import market_or_404
from holobazaar.stories import service as stories
from holobazaar.web.services import services
from holobazaar.web.studio.shell import (
    NO_STORE,
    StudioPage,
    _problem,
    first,
    open_page,
    posted,
)

router = APIRouter(include_in_schema=False)

ROLES = ("grower", "curator")  # curators (and admins) look at any farm's page
FOLLOW_MS = 10_000  # how often an open page re-reads its items
STATUS_TEXT = {"in_stock": "in stock", "low": "low", "sold_out": "sold out"}
WINDOWS = (("15m", "Last 15 minutes"), ("day", "Today"))
KIND_TEXT = {"love": "love", "wow": "wow", "hungry": "hungry", "learn": "want to learn"}


def _farm(page: StudioPage) -> tuple[str | None, dict[str, str]]:
    """The farm this page shows and the market's farms (id -> name). A grower's own farm
    (whatever `?farm=` says); a curator's choice; None when there is nothing to show."""
    content = market_or_404(services(page.request).scenes, page.market)
    farms = {f.id: f.name for f in content.market.farms}
    if not page.allows("curator"):
        return page.principal.farm_of(page.market), farms
    chosen = page.request.query_params.get("farm")
    if chosen in farms:
        return chosen, farms
    return (next(iter(farms)) if len(farms) == 1 else None), farms


def _stories(engine: Any, market: str, farm: str) -> list[dict[str, Any]]:
    _, found = stories.list_documents(engine, "story", market=market, limit=500)
    return [{"slug": s.slug, "title": getattr(s.doc, "title", s.slug), "status": s.status,
             "updated_at": s.updated_at} for s in found
            if farm in (getattr(s.doc, "producers", None) or [])]


def _pulse(page: StudioPage, farm: str) -> dict[str, Any]:
    """The k-anonymous figures of the farm's stalls (displays whose farm it is)."""
    running = services(page.request)
    content = market_or_404(running.scenes, page.market)
    stalls = {d_id: d for d_id, d in content.displays.items()
              if getattr(d, "farm", None) == farm}
    state = running.pulse.state(page.market)
    windows = []
    for key, label in WINDOWS:
        shown = (state.get("windows") or {}).get(key) or {}
        figures = (shown.get("displays") or {})
        rows = []
        for d_id, display in sorted(stalls.items()):
            f = figures.get(d_id)
            rows.append({"id": d_id, "title": getattr(display, "title", d_id), "figures": f})
        windows.append({"key": key, "label": label, "rows": rows})
    return {"k": state.get("k"), "stalls": len(stalls), "windows": windows,
            "kinds": KIND_TEXT}


async def _context(page: StudioPage, farm: str | None, farms: dict[str, str]
                   ) -> dict[str, Any]:
    running = services(page.request)
    content = market_or_404(running.scenes, page.market)
    market_file = content.market
    profile = next((f for f in market_file.farms if f.id == farm), None)
    items = []
    if farm is not None:
        live = running.scenes.items.get(page.market, {})
        engine = running.engine
        for sku, facts in sorted(live.items(), key=lambda kv: kv[1].name.lower()):
            if facts.farm != farm:
                continue
            version = await db.call(engine, service.version_of, engine, page.market, sku)
            items.append({"sku": sku, "name": facts.name, "unit": facts.unit,
                          "price": service.amount_text(facts.price)
                          if facts.price is not None else "",
                          "currency": facts.currency, "stock": facts.stock,
                          "status": facts.status,
                          "status_text": STATUS_TEXT.get(facts.status, facts.status),
                          "version": version})
    own_stories = (await db.call(running.engine, _stories, running.engine, page.market, farm)
                   if farm else [])
    images = _images(page)
    return {"farm": farm, "farms": farms, "profile": profile, "items": items,
            "prices": market_file.growers_set_prices, "four_eyes": market_file.four_eyes,
            "is_grower": not page.allows("curator"), "stories": own_stories,
            "profile_form": _profile_form(page, farm, images) if farm else None,
            "images": images,
            "pulse": _pulse(page, farm) if farm else None,
            "threshold": running.settings.hold_price_change, "follow_ms": FOLLOW_MS}


async def _render(page: StudioPage, farm: str | None, farms: dict[str, str],
                  status: int = 200, **extra: Any) -> Response:
    context = await _context(page, farm, farms)
    context.setdefault("errors", {})
    context.setdefault("profile_errors", {})
    q = page.request.query_params
    if "done" in q:
        context.setdefault("notice", q["done"][:200])
    context.update(extra)
    return page.render("studio/grower.html", context, status=status)


@router.get("/studio/{market}/grower", response_class=HTMLResponse)
async def grower(request: Request, market: str, part: str | None = None) -> Response:
    page = await open_page(request, market, "grower", roles=ROLES)
    if isinstance(page, Response):
        return page
    farm, farms = _farm(page)
    if part == "items":  # what the open page re-reads to stay current (the feed, others)
        context = await _context(page, farm, farms)
        return JSONResponse([{k: it[k] for k in ("sku", "stock", "status", "status_text",
                                                   "price", "version")}
                             for it in context["items"]], headers=NO_STORE)
    return await _render(page, farm, farms)


def _back(page: StudioPage, farm: str, notice: str, anchor: str) -> Response:
    query = {"done": notice}
    if page.allows("curator"):
        query["farm"] = farm
    return RedirectResponse(f"/studio/{page.market}/grower?{urlencode(query)}#{anchor}",
                            status_code=303, headers=NO_STORE)


# ---- the farm's profile -------------------------------------------------------------------


def _images(page: StudioPage) -> dict[str, str]:
    """The market's images (asset name -> URL): what a farm photo may be."""
    refs = services(page.request).scenes.asset_refs(page.market)
    return {name: ref.url for name, ref in sorted(refs.items())
            if ref.media_type.startswith("image/")}


def _profile_form(page: StudioPage, farm: str, images: dict[str, str],
                  entry: dict[str, Any] | None = None, etag: str | None = None
                  ) -> dict[str, Any]:
    """The profile form's values: the file's entry (or what was sent back), its revision,
    and each photo with its URL."""
    if entry is None:
        try:
            entry, etag = farm_authoring.read_farm(services(page.request).scenes,
                                                   page.market, farm)
        except AuthoringError:
            entry, etag = {}, ""
    return {"location": entry.get("location", ""), "description": entry.get("description", ""),
            "practices": "\n".join(entry.get("practices") or []), "etag": etag or "",
            "photos": [{"asset": p.get("asset", ""), "alt": p.get("alt", ""),
                        "url": images.get(p.get("asset", ""))}
                       for p in entry.get("photos") or [] if isinstance(p, dict)]}


def _profile_changes(form: dict[str, list[str]]) -> dict[str, Any]:
    removed = set(form.get("photo_remove") or [])
    assets, alts = form.get("photo_asset") or [], form.get("photo_alt") or []
    photos = [{"asset": a.strip(), "alt": (alts[i] if i < len(alts) else "").strip()}
              for i, a in enumerate(assets) if a.strip() and a.strip() not in removed]
    return {"location": first(form, "location").strip(),
            "description": first(form, "description").strip().replace("\r\n", "\n"),
            "practices": [line.strip() for line in first(form, "practices").splitlines()
                          if line.strip()],
            "photos": [{k: v for k, v in p.items() if v} for p in photos]}


@router.post("/studio/{market}/grower/profile")
async def change_profile(request: Request, market: str) -> Response:
    checked = await posted(request, market, "grower", roles=ROLES)
    if isinstance(checked, Response):
        return checked
    page, form = checked
    farm, farms = _farm(page)
    if farm is None:
        return _problem(request, 403, "No farm", "Choose a farm first.")
    changes = _profile_changes(form)
    images = _images(page)
    try:
        await farm_authoring.save_farm(services(request).scenes, market, farm, changes,
                                       first(form, "etag"), set(images))
    except AuthoringError as exc:
        if exc.status == 412:  # someone saved the file meanwhile: show theirs, keep mine
            return await _render(page, farm, farms, status=409, profile_errors={
                "form": "Someone changed the market's file after you opened this page: the "
                        "profile below is the current one; your text was not saved. Make "
                        "your change again."})
        found = exc.detail.get("errors") if isinstance(exc.detail, dict) else None
        errors: dict[str, str] = found if isinstance(found, dict) else {"form": str(exc)}
        return await _render(page, farm, farms, status=422, profile_errors=errors,
                             profile_form=_profile_form(page, farm, images, changes,
                                                        first(form, "etag")))
    return _back(page, farm, "Saved your farm's profile: visitors see it now.", "profile-h")


def _change(form: dict[str, list[str]], action: str, old_status: str, prices: bool,
            errors: dict[str, str]) -> ItemUpdate | None:
    """The ItemUpdate a form asks for, or None with the message next to its field."""
    fields: dict[str, Any] = {}
    if action == "soldout":
        fields = {"stock": 0, "status": "sold_out"}
    elif action == "stock":
        text = first(form, "stock").strip()
        if not text.isdigit() or int(text) > 10_000_000:
            errors["stock"] = "Enter a whole number of 0 or more, such as 12."
            return None
        stock = int(text)
        fields = {"stock": stock, "status": "sold_out" if stock == 0 else
                  ("in_stock" if old_status == "sold_out" else old_status)}
    elif action == "price" and prices:
        text = first(form, "price").strip().replace(",", ".")
        try:
            price = Decimal(text)
        except InvalidOperation:
            price = None
        if price is None or not price.is_finite() or price < 0:
            errors["price"] = "Enter a price of 0 or more, such as 2.50."
            return None
        fields = {"price": price, "confirm": first(form, "confirm") == "1"}
    else:
        errors["form"] = "Choose what to change."
        return None
    try:
        return ItemUpdate(**fields)
    except ValidationError as exc:
        field = str(exc.errors()[0]["loc"][0]) if exc.errors()[0]["loc"] else "form"
        errors[field if field in ("stock", "price") else "form"] = \
            f"Not accepted: {exc.errors()[0]['msg']}."
        return None


@router.post("/studio/{market}/grower/items/{sku}")
async def change_item(request: Request, market: str, sku: str) -> Response:
    checked = await posted(request, market, "grower", roles=ROLES)
    if isinstance(checked, Response):
        return checked
    page, form = checked
    running = services(request)
    scenes = running.scenes
    facts = scenes.items.get(market, {}).get(sku)
    if facts is None or not page.principal.may_touch_farm(market, facts.farm):
        # Another farm's item (or none): the same answer, so nothing leaks.
        return _problem(request, 403, "Not your farm's item",
                        "You can change only your own farm's items.")
    farm = facts.farm or ""
    market_file = market_or_404(scenes, market).market
    farms = {f.id: f.name for f in market_file.farms}
    errors: dict[str, str] = {}
    action = first(form, "action")
    change = _change(form, action, facts.status, market_file.growers_set_prices, errors)
    extra: dict[str, Any] = {}
    status = 400
    if change is not None:
        try:
            applied = await db.call(
                scenes.engine, service.update_item, scenes.engine, market, sku, change,
                actor=page.principal.actor,
                hold_price_change=running.settings.hold_price_change,
                four_eyes=market_file.four_eyes,
                expected_version=first(form, "version") or None)
        except service.ItemNotFound:
            return _problem(request, 404, "No such item", f"{sku} is not in this market.")
        except service.StaleVersion:
            errors["form"] = ("Someone changed this item since you opened the page: the "
                              "current values are shown; make your change again.")
            status = 409
        except service.ConfirmationRequired as exc:
            check = exc.check.as_json()
            extra["confirm"] = {"sku": sku, "price": first(form, "price").strip(),
                                "check": check}
            status = 409
        except service.ApprovalPending:
            return _back(page, farm, f"{facts.name}: the new price waits for a curator's "
                                     "approval; visitors see the old one until then.",
                         f"item-{sku}")
        else:
            await running.reconciler.feed_changed(market, BatchResult({}, applied=[applied]))
            what = ("sold out" if action == "soldout" else
                    f"stock {applied.stock}" if action == "stock" else
                    f"price {service.amount_text(service.price_of(applied))} {applied.currency}")
            return _back(page, farm, f"Saved: {applied.name}, {what}.", f"item-{sku}")
    return await _render(page, farm, farms, status=status, errors={sku: errors}, **extra)
