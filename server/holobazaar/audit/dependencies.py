"""What the audit routes get from the assembled app, declared by type."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from holobazaar.audit.witness import WitnessService
from holobazaar.dependencies import app_services, in_place


def get_witness(request: Request) -> WitnessService:
    return app_services(request).witness


WitnessDep = Annotated[WitnessService, Depends(in_place(get_witness))]
