"""The show service as the show routes get it from the assembled app: `shows: Shows` (an
Annotated FastAPI dependency) instead of reading the app's state."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from holobazaar.dependencies import app_services, in_place
from holobazaar.shows.service import ShowService


def get_shows(request: Request) -> ShowService:
    return app_services(request).shows


Shows = Annotated[ShowService, Depends(in_place(get_shows))]
