"""The phone AR files' service as routes get it from the assembled app."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from holobazaar.dependencies import app_services, in_place
from holobazaar.quicklook.service import QuickLook


def get_quicklook(request: Request) -> QuickLook:
    return app_services(request).quicklook


QuickLookDep = Annotated[QuickLook, Depends(in_place(get_quicklook))]
