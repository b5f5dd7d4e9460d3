"""The show service as the show routes get it from the assembled app: `shows: Shows` (an
Annotated FastAPI dependency) instead of reading request.app.state."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from holobazaar.shows.service import ShowService


def get_shows(request: Request) -> ShowService:
    return request.app.state.shows


Shows = Annotated[ShowService, Depends(get_shows)]
