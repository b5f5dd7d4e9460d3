"""Assembles the application: settings, database, hub, scene service, routes, pages."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from holobazaar import __version__, db, logs
from holobazaar.accounts.dependencies import guard_before_body
from holobazaar.accounts.routes import router as accounts_router
from holobazaar.accounts.stream import StreamAuth
from holobazaar.assets import jobs as asset_jobs
from holobazaar.assets import service as assets_service
from holobazaar.assets import storage as asset_storage
from holobazaar.assets.routes import publish as publish_asset
from holobazaar.assets.routes import router as assets_router
from holobazaar.audit.routes import router as audit_router
from holobazaar.audit.witness import WitnessCollector, WitnessService
from holobazaar.authoring.routes import router as authoring_router
from holobazaar.authoring.schedule_routes import router as display_schedule_router
from holobazaar.authoring.shows_routes import router as show_authoring_router
from holobazaar.authoring.zones_routes import router as zone_authoring_router
from holobazaar.cluster import create_cluster
from holobazaar.cluster.limits import LocalRateLimiter
from holobazaar.config import Settings, parse_osc_allow_list
from holobazaar.content import load_content
from holobazaar.edges import Edge, UnhandledCollector, loop_exception_handler
from holobazaar.inventory.feed_routes import policy_of
from holobazaar.inventory.feed_routes import router as inventory_truth_router
from holobazaar.inventory.metrics import ReconcileCollector
from holobazaar.inventory.pull import Poller
from holobazaar.inventory.reconciler import Reconciler
from holobazaar.inventory.routes import router as inventory_router
from holobazaar.inventory.service import InventoryItems
from holobazaar.markers.routes import router as markers_router
from holobazaar.moderation.routes import router as moderation_router
from holobazaar.pulse.bindings import PulseBindings
from holobazaar.pulse.cues import fired_cue_marks
from holobazaar.pulse.routes import router as pulse_router
from holobazaar.pulse.service import PulseService
from holobazaar.pulse.transport import create_transport
from holobazaar.quicklook.routes import router as quicklook_router
from holobazaar.redact import install_error_guard
from holobazaar.redis_connection import connect as connect_redis
from holobazaar.scenes.clock import Clock
from holobazaar.scenes.routes import router as scenes_router
from holobazaar.scenes.scheduled_publish import DisplayPublishing
from holobazaar.scenes.scheduler import Scheduler
from holobazaar.scenes.service import SceneService
from holobazaar.shows.osc import OscControl, start_osc
from holobazaar.shows.routes import router as shows_router
from holobazaar.shows.routes import schema_router as scene_schema_router
from holobazaar.shows.service import ShowService
from holobazaar.shows.starts import ShowStarts
from holobazaar.stories import startup as stories_startup
from holobazaar.stories.routes import router as stories_router
from holobazaar.stories.schedule_routes import router as story_schedule_router
from holobazaar.stories.scheduled import ScheduledPublishing
from holobazaar.stories.translation_routes import router as story_translation_router
from holobazaar.stream import routes as stream_routes
from holobazaar.stream.broker import BrokerUnavailable
from holobazaar.stream.broker_factory import create_broker
from holobazaar.stream.hub import Hub
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
from holobazaar.web.assembly import (
    pulse_settings,
    quicklook,
    stream_limits,
    wire_cluster,
    wire_cluster_content,
    wire_cluster_reconciler,
    wire_cluster_tokens,
)
from holobazaar.web.errors import error_page
from holobazaar.web.limits import BodyLimits, body_rules
from holobazaar.web.studio.truth_feed import TruthFeed

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

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict]:
        gc.set_threshold(*GC_THRESHOLDS)  # per process: every worker runs this
        # What escapes a background task or a transport: one line and a count (edges.py).
        asyncio.get_running_loop().set_exception_handler(loop_exception_handler)
        url = settings.resolved_database_url
        await run_in_threadpool(db.upgrade, url)
        engine = db.make_engine(url, settings.db_pool_size, settings.db_max_overflow)
        redis = connect_redis(settings.broker_url, settings.redis_prefix)
        hub = Hub(create_broker(redis, settings.history_size, settings.history_ttl))
        await hub.start()
        cluster = create_cluster(redis, settings.lease_ttl)
        app.state.submission_limiter = cluster.rate_limiter(
            "submissions", settings.submission_per_hour, settings.submission_burst)
        scenes = SceneService(
            settings.content_dir, hub, engine, clock, item_store=InventoryItems(engine),
            # The loader knows each market's ready uploads too (a display may name them).
            load=lambda folder: load_content(folder, lambda m: scenes.stored_assets.get(m, {})))
        scenes.stored_assets = await run_in_threadpool(assets_service.stored_refs, engine)
        wire_cluster(cluster, scenes)
        wire_cluster_tokens(cluster, engine)
        await cluster.start()
        app.state.stories = stories_startup.provider(engine, scenes)
        await scenes.start()
        app.state.engine, app.state.hub, app.state.scenes = engine, hub, scenes
        app.state.cluster = cluster
        app.state.quicklook = quicklook(app.state, settings)  # /d/<m>/<d>.usdz and .glb
        await stories_startup.start(settings, engine, scenes, app.state.stories)
        wire_cluster_content(cluster, app.state)
        shows = app.state.shows = ShowService(scenes, hub, settings.show_lead_ms,
                                              engine=engine)
        if redis is not None:
            from holobazaar.shows.shared import SharedShows

            SharedShows(shows, cluster, redis)
        await shows.start()
        osc_close = None
        if settings.osc_port is not None:
            assert settings.osc_secret is not None  # Settings refuses a port without one
            app.state.osc = OscControl(shows.runner, settings.osc_secret,
                                       parse_osc_allow_list(settings.osc_allow))
            transport, osc_close = await start_osc(settings.osc_host, settings.osc_port,
                                                   app.state.osc)
            app.state.osc_address = transport.get_extra_info("sockname")
            log.info("OSC show control on udp://%s:%s", *app.state.osc_address[:2])
        pulse = PulseService(engine, hub, scenes, pulse_settings(settings),
                             transport=create_transport(redis))
        pulse_bindings = PulseBindings(pulse, scenes, settings.pulse_binding_interval)
        scenes.providers.append(pulse_bindings)
        pulse.listeners.append(pulse_bindings.poke)
        pulse.cue_sources.append(fired_cue_marks(shows))
        pulse.recipe_catalog = app.state.stories.recipe_names
        await pulse.start()
        if pulse.transport.distributed:  # one aggregator for the cluster (docs/pulse.md)
            cluster.singleton("pulse-aggregator", pulse.lead)
        app.state.pulse = app.state.reaction_sink = pulse
        app.state.pulse_bindings = pulse_bindings
        stop = asyncio.Event()
        watcher = asyncio.create_task(scenes.watch(stop)) if settings.watch else None
        reconciler = Reconciler(scenes, engine, stale_after=settings.inventory_stale_after,
                                interval=settings.reconcile_interval)
        # Every display state is checked against the inventory before the hub takes it.
        hub.add_guard(reconciler.guard)
        poller = Poller(reconciler, lambda: policy_of(settings), settings.pull_timeout)
        wire_cluster_reconciler(cluster, reconciler, poller)
        await reconciler.start()
        app.state.reconciler, app.state.poller = reconciler, poller
        app.state.metric_collectors.append(ReconcileCollector(reconciler, poller))
        # Single-writer duties: once across the cluster, under a lease (one node: always).
        cluster.singleton("reconcile-sweep", lambda: reconciler.run(stop))
        cluster.singleton("pull-feeds", lambda: poller.run(stop))
        witness = app.state.witness = WitnessService(
            engine, settings.witness_interval, settings.witness_timeout,
            lambda: sorted(scenes.content.markets) if scenes.content else [])
        app.state.metric_collectors.append(WitnessCollector(witness))
        cluster.singleton("audit-witness", lambda: witness.run(stop))
        # The staff channel market/<m>/truth: holds, mismatches, moderation counts (#21).
        truth_feed = app.state.truth_feed = TruthFeed(
            engine, hub, lambda: sorted(scenes.content.markets) if scenes.content else [])
        cluster.singleton("truth-feed", lambda: truth_feed.run(stop))
        # Opening hours, display schedules, show starts, scheduled publishing: at each edge,
        # once per cluster (#24; tests/support/live.py passes `clock`: keep these lines).
        app.state.show_starts = ShowStarts(shows)  # shows that start by themselves
        async def stories_published(market: str) -> None:  # as after a curator's publish
            await app.state.stories.reload(market)
            await scenes.refresh(market)
            await cluster.notify("stories", {"market": market})

        publishing = ScheduledPublishing(engine, stories_published)
        scheduler = app.state.scheduler = Scheduler(
            scenes, engine, cluster.node,
            sources=[app.state.show_starts, publishing, DisplayPublishing(scenes)])
        cluster.singleton("scheduler", lambda: scheduler.run(stop))
        # Uploads are processed by whichever node claims them (assets/jobs.py); their
        # files are in the asset store every node reads (local: this node alone).
        app.state.asset_files = asset_storage.open_files(
            settings.data_dir, settings.asset_store, engine, settings.asset_s3_endpoint)
        log.info("stored assets: %s", app.state.asset_files.label)
        app.state.asset_jobs = asset_jobs.AssetJobs(
            engine, app.state.asset_files, cluster.node, settings.lease_ttl,
            settings.asset_workers,
            lambda job: asset_jobs.options_from(settings, units=job.get("units", "m"),
                                                up=job.get("up", "y"), size=job.get("size")),
            lambda asset: publish_asset(app.state, asset))
        background: list[asyncio.Task] = [
            asyncio.create_task(app.state.asset_jobs.run(stop), name="asset-jobs")]
        try:
            # `/ws` without an ASGI task per connection under `holobazaar serve` (fastws).
            yield stream_routes.direct(app)
        finally:
            stop.set()
            for task in background:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await asyncio.wait_for(task, 5)
            await reconciler.drain()
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await watcher
            await cluster.close()
            if osc_close is not None:
                await osc_close()
            await shows.close()
            await pulse.close()
            await hub.close()
            if redis is not None:
                await redis.close()
            engine.dispose()

    # /docs is pages.api_docs: Swagger UI from the client build, not from a CDN.
    app = FastAPI(title="Holobazaar", version=__version__, lifespan=lifespan, docs_url=None,
                  description="AR storytelling and display server for food markets.")
    app.state.settings = settings
    app.state.stream_limits = stream_limits(settings)
    app.state.stream_metrics = {}
    app.state.metric_collectors = [UnhandledCollector()]  # extra Prometheus collectors
    # Replaced by a cluster-wide one at startup when the broker is Redis.
    app.state.submission_limiter = LocalRateLimiter(settings.submission_per_hour,
                                                    settings.submission_burst)
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
    app.state.stream_auth = StreamAuth(app.state)
    client.mount(app, settings.client_dir)
    return app


def create_app_from_env() -> FastAPI:
    """App factory for `serve --workers N` (uvicorn imports it in every worker)."""
    settings = Settings.model_validate_json(os.environ[SETTINGS_ENV])
    logs.configure(settings.log_level, settings.log_format)  # a fresh (spawned) process
    return create_app(settings)
