"""Story and recipe pages (/s/<slug>, /r/<slug>): published content rendered on the
server. The body HTML is the sanitized render of the Markdown (stories.markup); every
other field is escaped by the template's autoescape."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse

from holobazaar.stories import service
from holobazaar.stories.markup import render_markdown
from holobazaar.stories.schema import duration_minutes
from holobazaar.web.pages import templates

router = APIRouter(include_in_schema=False)


async def _page(request: Request, kind: str, slug: str) -> HTMLResponse:
    try:
        saved = await run_in_threadpool(service.get, request.app.state.engine, kind, slug)
    except service.NotFound:
        saved = None
    if saved is None or saved.status != "published":
        return templates.TemplateResponse(request, "not_found.html", {
            "message": f"There is no published {kind} here.", "market": None},
            status_code=404)
    market = request.app.state.scenes.market(saved.market)
    return templates.TemplateResponse(request, f"{kind}.html", {
        "doc": saved.doc, "saved": saved, "body_html": render_markdown(saved.doc.body),
        "market": market.market.market if market else None, "minutes": duration_minutes})


@router.get("/s/{slug}", response_class=HTMLResponse)
async def story_page(request: Request, slug: str) -> HTMLResponse:
    return await _page(request, "story", slug)


@router.get("/r/{slug}", response_class=HTMLResponse)
async def recipe_page(request: Request, slug: str) -> HTMLResponse:
    return await _page(request, "recipe", slug)
