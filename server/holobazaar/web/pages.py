"""HTML pages (Jinja2). The visitor pages of the WebXR client live here too."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.templating import Jinja2Templates
from starlette.responses import HTMLResponse

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")


@router.get("/", response_class=HTMLResponse)
def index(request: Request) -> HTMLResponse:
    scenes = request.app.state.scenes
    markets = scenes.content.markets.values() if scenes.content else []
    return templates.TemplateResponse(request, "index.html", {"markets": markets})
