"""The scene service as routes get it from the assembled app: `scenes: Scenes` (an
Annotated FastAPI dependency), and a market of its content or a 404. The routes of
scenes and of the domains above it declare it instead of reading the app's state."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request

from holobazaar.dependencies import app_services, in_place
from holobazaar.scenes.loader import MarketContent
from holobazaar.scenes.service import SceneService


def get_scenes(request: Request) -> SceneService:
    return app_services(request).scenes


scenes_dependency = in_place(get_scenes)  # for routes that name a default
Scenes = Annotated[SceneService, Depends(scenes_dependency)]


def market_or_404(scenes: SceneService, market: str) -> MarketContent:
    found = scenes.market(market)
    if found is None:
        raise HTTPException(404, f"no market {market!r}")
    return found
