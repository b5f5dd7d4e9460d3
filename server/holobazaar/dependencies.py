"""What every domain's routes may get from the assembled app, declared by type:
`engine: EngineDep`, `settings: SettingsDep`. The assembly (web/app.py) sets them up once;
a domain's own `dependencies.py` adds its services the same way."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.engine import Engine

from holobazaar.config import Settings


def get_engine(request: Request) -> Engine:
    return request.app.state.engine


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


EngineDep = Annotated[Engine, Depends(get_engine)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
