"""The hub as routes get it from the assembled app: `hub: HubDep`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from holobazaar.dependencies import app_services, in_place
from holobazaar.stream.hub import Hub


def get_hub(request: Request) -> Hub:
    return app_services(request).hub


HubDep = Annotated[Hub, Depends(in_place(get_hub))]
