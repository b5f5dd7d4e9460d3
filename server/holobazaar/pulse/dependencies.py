"""The pulse service as the pulse routes get it from the assembled app: `pulse: Pulse`
(an Annotated FastAPI dependency) instead of reading the app's state."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from holobazaar.dependencies import app_services, in_place
from holobazaar.pulse.service import PulseService


def get_pulse(request: Request) -> PulseService:
    return app_services(request).pulse


Pulse = Annotated[PulseService, Depends(in_place(get_pulse))]
