"""Assembles the application: settings, database, hub, scene service, routes, pages."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from holobazaar import __version__, db
from holobazaar.accounts.dependencies import guard_before_body
from holobazaar.accounts.routes import router as accounts_router
from holobazaar.accounts.stream import StreamAuth
from holobazaar.assets.routes import router as assets_router
from holobazaar.config import Settings
from holobazaar.inventory.routes import router as inventory_router
from holobazaar.markers.routes import router as markers_router
from holobazaar.scenes.routes import router as scenes_router
from holobazaar.scenes.service import SceneService
from holobazaar.stream.broker import create_broker
from holobazaar.stream.connection import StreamLimits
from holobazaar.stream.hub import Hub
from holobazaar.stream.routes import router as stream_router
from holobazaar.web import accounts_pages, client, ops, pages, trust

log = logging.getLogger(__name__)


def stream_limits(settings: Settings) -> StreamLimits:
    return StreamLimits(
        max_frame_bytes=settings.max_frame_bytes,
        max_subscriptions=settings.max_subscriptions,
        send_buffer_bytes=settings.send_buffer_bytes,
        rate=settings.client_rate,
        burst=settings.client_burst,
        max_errors=settings.max_errors,
        heartbeat_interval=settings.heartbeat_interval,
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        url = settings.resolved_database_url
        await run_in_threadpool(db.upgrade, url)
        engine = db.make_engine(url)
        hub = Hub(create_broker(settings.broker_url, settings.history_size,
                                settings.history_ttl))
        await hub.start()
        scenes = SceneService(settings.content_dir, hub, engine)
        await scenes.start()
        app.state.engine, app.state.hub, app.state.scenes = engine, hub, scenes
        stop = asyncio.Event()
        watcher = asyncio.create_task(scenes.watch(stop)) if settings.watch else None
        try:
            yield
        finally:
            stop.set()
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await watcher
            await hub.close()
            engine.dispose()

    app = FastAPI(title="Holobazaar", version=__version__, lifespan=lifespan,
                  description="AR storytelling and display server for food markets.")
    app.state.settings = settings
    app.state.stream_limits = stream_limits(settings)
    app.state.stream_metrics = {}
    for router in (ops.router, scenes_router, inventory_router, assets_router, stream_router,
                   markers_router,
                   pages.router, trust.router, accounts_router, accounts_pages.router):
        app.include_router(router)
    guard_before_body(app)  # role checks win over body errors: anonymous gets 401, not 422
    app.state.stream_auth = StreamAuth(app.state)
    client.mount(app, settings.client_dir)
    return app
