"""Story and recipe pages (/s/<slug>, /r/<slug>): published content rendered on the
server. The body HTML is the sanitized render of the Markdown (stories.markup); every
other field is escaped by the template's autoescape."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse

from holobazaar import db
from holobazaar.stories import service, translations
from holobazaar.stories.markup import render_markdown
from holobazaar.stories.schema import duration_minutes
from holobazaar.web import i18n as page_i18n
from holobazaar.web.pages import market_stalls, templates, translated_market
from holobazaar.web.services import services

router = APIRouter(include_in_schema=False)


async def _page(request: Request, kind: str, slug: str) -> HTMLResponse:
    engine = services(request).engine
    try:
        saved = await db.call(engine, service.get, engine, kind, slug)
    except service.NotFound:
        saved = None
    if saved is None or saved.status != "published":
        return templates.TemplateResponse(request, "not_found.html", {
            "message": f"There is no published {kind} here.", "market": None},
            status_code=404)
    scenes = services(request).scenes
    market = scenes.market(saved.market)
    lang = page_i18n.choose(request, market.market.market if market else None)
    stalls = market_stalls(scenes, market, lang) if market else []
    doc = saved.doc
    if lang != doc.language:  # its published translation, field by field, if it has one
        found = await db.call(engine, translations.published_fields, engine, kind, slug, lang)
        doc = translations.translated(doc, found, lang)
    return templates.TemplateResponse(request, f"{kind}.html", {
        "doc": doc, "saved": saved, "body_html": render_markdown(doc.body),
        "market": translated_market(market.market.market, lang) if market else None,
        "minutes": duration_minutes,
        "stalls": _their_stalls(saved.doc, stalls), "sold_at": _sold_at(stalls)})


def _their_stalls(doc: Any, stalls: list[dict]) -> list[dict]:
    """The stalls of the story's or recipe's producers, or that sell the items it names."""
    producers = set(doc.producers)
    skus = set(doc.items) | {g.sku for g in getattr(doc, "ingredients", []) if g.sku}
    return [s for s in stalls
            if ((s["state"].get("farm") or {}).get("id") in producers)
            or (producers == set() and skus & {i.get("sku") for i in s["items"]})]


def _sold_at(stalls: list[dict]) -> dict[str, list[dict]]:
    """SKU -> the stalls that have it in stock today, with their price line's item."""
    out: dict[str, list[dict]] = {}
    for stall in stalls:
        for item in stall["items"]:
            if item.get("status") != "sold_out" and item.get("sku"):
                out.setdefault(item["sku"], []).append({"stall": stall, "item": item})
    return out


@router.get("/s/{slug}", response_class=HTMLResponse)
async def story_page(request: Request, slug: str) -> HTMLResponse:
    return await _page(request, "story", slug)


@router.get("/r/{slug}", response_class=HTMLResponse)
async def recipe_page(request: Request, slug: str) -> HTMLResponse:
    return await _page(request, "recipe", slug)
