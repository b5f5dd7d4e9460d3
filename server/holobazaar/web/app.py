"""Assembles the application: settings, database, hub, scene service, routes, pages."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from holobazaar import __version__, logs
from holobazaar.accounts.dependencies import guard_before_body
from holobazaar.accounts.routes import router as accounts_router
from holobazaar.assets.routes import router as assets_router
from holobazaar.audit.routes import router as audit_router
from holobazaar.authoring.routes import router as authoring_router
from holobazaar.authoring.schedule_routes import router as display_schedule_router
from holobazaar.authoring.shows_routes import router as show_authoring_router
from holobazaar.authoring.zones_routes import router as zone_authoring_router
from holobazaar.config import Settings
from holobazaar.edges import Edge, UnhandledCollector, loop_exception_handler
from holobazaar.inventory.feed_routes import router as inventory_truth_router
from holobazaar.inventory.routes import router as inventory_router
from holobazaar.markers.routes import router as markers_router
from holobazaar.moderation.routes import router as moderation_router
from holobazaar.pulse.routes import router as pulse_router
from holobazaar.quicklook.routes import router as quicklook_router
from holobazaar.redact import install_error_guard
from holobazaar.scenes.clock import Clock
from holobazaar.scenes.routes import router as scenes_router
from holobazaar.shows.routes import router as shows_router
from holobazaar.shows.routes import schema_router as scene_schema_router
from holobazaar.stories.routes import router as stories_router
from holobazaar.stories.schedule_routes import router as story_schedule_router
from holobazaar.stories.translation_routes import router as story_translation_router
from holobazaar.stream import routes as stream_routes
from holobazaar.stream.broker import BrokerUnavailable
from holobazaar.stream.routes import router as stream_router
from holobazaar.validation import document_error_details
from holobazaar.web import (
    accounts_pages,
    client,
    history_pages,
    ops,
    pages,
    perform_pages,
    pulse_pages,
    send_pages,
    story_pages,
    studio,
    trust,
)
from holobazaar.web.assembly import assemble, shutdown
from holobazaar.web.errors import error_page
from holobazaar.web.limits import BodyLimits, body_rules

log = logging.getLogger(__name__)

# `serve --workers N` hands its settings to each worker process through this variable.
SETTINGS_ENV = "HOLOBAZAAR_SERVE_SETTINGS_JSON"


# Thousands of connections are many small, long-lived objects: with CPython's default first
# threshold (700) the cyclic GC took a third of the CPU of a connect burst. Figures:
# docs/performance.md, "Tuning constants".
GC_THRESHOLDS = (2_000, 10, 10)


async def broker_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """Redis is unreachable (a restart): a 503 the caller can retry, one warning line."""
    log.warning("%s %s: %s", request.method, request.url.path, exc)
    return JSONResponse({"detail": "the message broker is unreachable; try again shortly"},
                        status_code=503, headers={"Retry-After": "5"})


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    """`clock`: "now" for opening hours and schedules (tests pass a ManualClock)."""
    settings = settings or Settings()

    # /metrics' collectors beyond the stream's; the assembly adds its services' own.
    collectors: list = [UnhandledCollector()]

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict]:
        gc.set_threshold(*GC_THRESHOLDS)  # per process: every worker runs this
        # What escapes a background task or a transport: one line and a count (edges.py).
        asyncio.get_running_loop().set_exception_handler(loop_exception_handler)
        services = await assemble(settings, client_build, clock, collectors)
        app.state.services = services  # the one key: routes read it through dependencies.py
        if gc.get_freeze_count() == 0:
            # What start-up made (modules, content, composed states) lives as long as the
            # process: out of the cyclic GC's sight. Else the first full collection walks
            # it all: a 130-200 ms stall of every change and delivery some seconds after
            # start. Once per process: a test process starts hundreds of apps, and a full
            # collection of its grown heap at each start cost the suite minutes.
            gc.collect()
            gc.freeze()
        try:
            # `/ws` without an ASGI task per connection under `holobazaar serve` (fastws).
            yield stream_routes.direct(app)
        finally:
            await shutdown(services)

    # /docs is pages.api_docs: Swagger UI from the client build, not from a CDN.
    app = FastAPI(title="Holobazaar", version=__version__, lifespan=lifespan, docs_url=None,
                  description="AR storytelling and display server for food markets.")
    # Known before start-up: middleware and pages read it without the services.
    app.state.settings = settings
    for router in (ops.router, scenes_router, scene_schema_router, inventory_router,
                   assets_router, stream_router, markers_router, stories_router,
                   story_pages.router, send_pages.router, shows_router,
                   # before pages.router: /d/<m>/<d>.usdz is not the page of display "<d>.usdz"
                   inventory_truth_router, pulse_router, moderation_router, quicklook_router,
                   pages.router,
                   trust.router, accounts_router, accounts_pages.router, perform_pages.router,
                   pulse_pages.router, audit_router, history_pages.router, studio.router,
                   authoring_router, zone_authoring_router, show_authoring_router,
                   story_schedule_router, display_schedule_router, story_translation_router):
        app.include_router(router)
    app.add_exception_handler(BrokerUnavailable, broker_unavailable)
    guard_before_body(app)  # role checks win over body errors: anonymous gets 401, not 422
    document_error_details(app)  # a 422's detail: a list of errors or a message
    # Bodies over the route's limit: 413 before they are read, parsed or authenticated.
    app.add_middleware(BodyLimits, *body_rules(settings))
    install_error_guard(app, settings.data_dir, settings.content_dir)  # no server paths
    trust.add_hsts(app, settings)  # Strict-Transport-Security on HTTPS responses
    # Outermost: request ids, the request log line, and the answer to any exception that
    # escapes (500 + error id, logged once; holobazaar.edges). Keep it the last added.
    app.add_middleware(Edge, access_log=settings.log_format == "json", page=error_page)
    client_build = client.mount(app, settings.client_dir)
    return app


def create_app_from_env() -> FastAPI:
    """App factory for `serve --workers N` (uvicorn imports it in every worker)."""
    settings = Settings.model_validate_json(os.environ[SETTINGS_ENV])
    logs.configure(settings.log_level, settings.log_format)  # a fresh (spawned) process
    return create_app(settings)
