"""What every domain's routes may get from the assembled app, declared by type:
`engine: EngineDep`, `settings: SettingsDep`. A domain's own `dependencies.py` adds its
services the same way, each read through `app_services` by the one field it returns."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from sqlalchemy.engine import Engine
from starlette.requests import HTTPConnection

from holobazaar.config import Settings


def app_services(conn: HTTPConnection) -> Any:
    """The running app's services: web/assembly.py's `Services`, built once at start-up and
    kept as `app.state.services`. Domains do not import that class (web/ is above them):
    their helpers type the field they read."""
    return conn.app.state.services


def get_engine(request: Request) -> Engine:
    return app_services(request).engine


def get_settings(request: Request) -> Settings:
    # Set when the app is made, before start-up: middleware and the trust app read it too.
    return request.app.state.settings


T = TypeVar("T")


def in_place(getter: Callable[[Request], T]) -> Callable[[Request], Awaitable[T]]:
    """A getter of the app's state as a FastAPI dependency run on the event loop: FastAPI
    runs a plain `def` dependency in a worker thread, a thread hop per dependency per
    request (#26: three on a price change's path) for what is an attribute read."""
    async def dependency(request: Request) -> T:
        return getter(request)
    dependency.__name__ = dependency.__qualname__ = getter.__name__
    return dependency


EngineDep = Annotated[Engine, Depends(in_place(get_engine))]
SettingsDep = Annotated[Settings, Depends(in_place(get_settings))]
