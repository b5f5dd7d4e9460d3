"""The one assembly step: `assemble` builds every service of a running app once, by
constructors, and returns them as one typed `Services` (the lifespan keeps it as
`app.state.services`; routes reach it through the `dependencies.py` helpers); `shutdown`
stops them. Also the domain settings made from the one Settings, and the cluster wiring
that keeps each node's copies current when another node changes them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool

from holobazaar import db
from holobazaar.accounts import service as accounts
from holobazaar.accounts.preview_links import PreviewLinks, shared_key
from holobazaar.accounts.stream import StreamAuth
from holobazaar.assets import jobs as asset_jobs
from holobazaar.assets import service as assets_service
from holobazaar.assets import storage
from holobazaar.assets.routes import publish as publish_asset
from holobazaar.assets.routes import refresh_scenes
from holobazaar.audit.witness import WitnessCollector, WitnessService
from holobazaar.cluster import Cluster, create_cluster
from holobazaar.config import Settings, parse_osc_allow_list
from holobazaar.content import load_content
from holobazaar.inventory.feed_routes import policy_of
from holobazaar.inventory.metrics import ReconcileCollector
from holobazaar.inventory.pull import Poller
from holobazaar.inventory.reconciler import Reconciler
from holobazaar.inventory.replay import ReplayGuard
from holobazaar.inventory.service import InventoryItems
from holobazaar.inventory.truth_feed import TruthFeed
from holobazaar.moderation import service as moderation
from holobazaar.pulse.bindings import PulseBindings
from holobazaar.pulse.cues import fired_cue_marks
from holobazaar.pulse.service import PulseService, PulseSettings
from holobazaar.pulse.transport import create_transport
from holobazaar.quicklook.metrics import QuickLookCollector
from holobazaar.quicklook.models import AssetReader
from holobazaar.quicklook.service import QuickLook
from holobazaar.redis_connection import connect as connect_redis
from holobazaar.scenes.clock import Clock
from holobazaar.scenes.scheduled_publish import DisplayPublishing
from holobazaar.scenes.scheduler import Scheduler
from holobazaar.scenes.service import SceneService
from holobazaar.shows.clustered import SharedShows
from holobazaar.shows.osc import OscControl, start_osc
from holobazaar.shows.service import ShowService
from holobazaar.shows.starts import ShowStarts
from holobazaar.stories import assembly as stories_assembly
from holobazaar.stories.bindings import StoryBindings
from holobazaar.stories.scheduled import ScheduledPublishing
from holobazaar.stream.broker_factory import create_broker
from holobazaar.stream.connection import StreamLimits
from holobazaar.stream.hub import Hub
from holobazaar.web.client import ClientBuild
from holobazaar.web.services import Services

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
        reaction_rate=settings.pulse_rate,
        reaction_burst=settings.pulse_burst,
    )


def pulse_settings(settings: Settings) -> PulseSettings:
    return PulseSettings(k=settings.pulse_k, publish_interval=settings.pulse_publish_interval,
                         retention=settings.pulse_retention, device_rate=settings.pulse_rate,
                         device_burst=settings.pulse_burst,
                         slow_interval=settings.pulse_slow_interval)


@dataclass(frozen=True)
class ComposeCoordination:
    """With several nodes, what the scene service is given: `announce` tells the others
    which items changed here, `market_lock` orders composing by commit (one node: None)."""

    announce: Callable[[str, list[str]], Awaitable[None]] | None = None
    market_lock: Callable[[str], AbstractAsyncContextManager[None]] | None = None


def compose_coordination(cluster: Cluster) -> ComposeCoordination:
    if not cluster.distributed:
        return ComposeCoordination()

    async def announce(market: str, skus: list[str]) -> None:
        await cluster.notify("inventory", {"market": market, "skus": skus})

    return ComposeCoordination(announce, lambda market: cluster.lock(f"compose:{market}"))


def wire_cluster(cluster: Cluster, scenes: SceneService) -> None:
    """Keep each node's inventory copy current when another node changes it."""
    if not cluster.distributed:
        return

    async def on_inventory(data: dict | None) -> None:
        if data is None:
            await scenes.peer_items_changed(None)
        elif isinstance(data, dict) and isinstance(data.get("market"), str):
            skus = data.get("skus")
            await scenes.peer_items_changed(data["market"],
                                            skus if isinstance(skus, list) else None)

    cluster.listen("inventory", on_inventory)


def revoke_notifier(cluster: Cluster) -> Callable[[int], None] | None:
    """How this node's token cache tells the other nodes a token was revoked here, so
    their caches forget it at once (without the message they would believe it for up to
    accounts.service.TOKEN_CACHE_SECONDS)."""
    if not cluster.distributed:
        return None
    loop = asyncio.get_running_loop()

    def revoked(token_id: int) -> None:  # revoke_token may run in a thread
        loop.call_soon_threadsafe(lambda: loop.create_task(
            cluster.notify("tokens", {"id": token_id})))

    return revoked


def wire_cluster_tokens(cluster: Cluster, cache: accounts.TokenCache) -> None:
    """A token revoked on another node (or by the CLI) is forgotten by this node's token
    cache at once. A reconnect (messages may be lost) forgets every cached token."""
    if not cluster.distributed:
        return

    async def on_tokens(data) -> None:
        token_id = data.get("id") if isinstance(data, dict) else None
        cache.forget(token_id if isinstance(token_id, int) else None)

    cluster.listen("tokens", on_tokens)


def wire_cluster_content(cluster: Cluster, stories: StoryBindings, scenes: SceneService,
                         engine: Engine) -> None:
    """Published stories and stored assets are cached per node: when another node changes
    them, reload this node's copy and recompose (the hub sends only what changed)."""
    if not cluster.distributed:
        return

    def markets_of(data, known) -> list[str]:
        if isinstance(data, dict) and isinstance(data.get("market"), str):
            return [data["market"]]
        return sorted(known)  # None: a reconnect, reload everything

    async def on_stories(data) -> None:
        for market in markets_of(data, stories.markets):
            await stories.reload(market)
            await scenes.refresh(market)

    async def on_assets(data) -> None:
        markets = markets_of(data, scenes.content.markets if scenes.content else [])
        await refresh_scenes(scenes, engine, markets[0] if len(markets) == 1 else None)

    cluster.listen("stories", on_stories)
    cluster.listen("assets", on_assets)


def reconcile_announcer(cluster: Cluster) -> Callable[[str], Awaitable[None]] | None:
    """How the reconciler tells the other nodes it recorded or resolved mismatches."""
    if not cluster.distributed:
        return None

    async def announce(market: str) -> None:
        await cluster.notify("reconcile", {"market": market})

    return announce


def wire_cluster_reconciler(cluster: Cluster, reconciler: Reconciler, poller: Poller) -> None:
    """Another node changed inventory (its holds may have changed too): resync this node's
    reconciler from the database. Another node recorded or resolved mismatches: reload the
    open set. Another node configured a feed: reload it and poll it afresh (if this node
    polls). Counters every node shows (sweeps, feed failures) live in Redis."""
    if not cluster.distributed:
        return

    def market_of(data) -> str | None:
        market = data.get("market") if isinstance(data, dict) else None
        return market if isinstance(market, str) else None

    async def on_inventory(data) -> None:
        await reconciler.resync(market_of(data))

    async def on_reconcile(data) -> None:
        await reconciler.reload_open(market_of(data))

    async def on_feed(data) -> None:
        market = market_of(data)
        for found in reconciler.markets():
            if market is None or found.id == market:
                await reconciler.reload_feed(found.id)
                poller.due.pop(found.id, None)

    cluster.listen("inventory", on_inventory)
    cluster.listen("reconcile", on_reconcile)
    cluster.listen("feed", on_feed)


ASSET_URL = re.compile(r"^/assets/(?P<hash>[0-9a-f]{64})\.(?P<ext>[a-z0-9]{2,5})$")


def asset_reader(scenes: SceneService, files: storage.AssetFiles) -> AssetReader:
    """How the phone AR files read the models and images a display state names: the
    content folder's files, else the stored uploads (through the node's asset files,
    which fetch from a shared store). A file that cannot be had reads as missing: the
    model is left out of the file, with a log line."""

    def read(url: str) -> bytes | None:
        match = ASSET_URL.match(url)
        if match is None:
            return None
        content = scenes.content
        asset = content.asset_by_hash(match["hash"]) if content else None
        try:
            if asset is not None:
                return asset.path.read_bytes()
            path = files.fetch(match["hash"], match["ext"])
            return path.read_bytes() if path is not None and path.is_file() else None
        except Exception as exc:  # a store that is down: the model is left out, logged
            log.warning("phone AR file: cannot read %s: %s", url, exc)
            return None

    return read


def quicklook(scenes: SceneService, files: storage.AssetFiles, settings: Settings,
              collectors: list[Any]) -> QuickLook:
    """The phone AR files (USDZ, GLB) of displays, cached under the data folder; their
    figures on /metrics."""
    made = QuickLook(settings.data_dir / "quicklook", asset_reader(scenes, files))
    collectors.append(QuickLookCollector(made))
    return made


async def assemble(settings: Settings, client: ClientBuild, clock: Clock | None = None,
                   metric_collectors: list[Any] | None = None) -> Services:
    """Build and start every service of a running app (web/app.py's lifespan). `clock`:
    "now" for opening hours and schedules (tests pass a ManualClock)."""
    collectors = metric_collectors if metric_collectors is not None else []
    url = settings.resolved_database_url
    await run_in_threadpool(db.upgrade, url)
    engine = db.make_engine(url, settings.db_pool_size, settings.db_max_overflow)
    redis = connect_redis(settings.broker_url, settings.redis_prefix)
    hub = Hub(create_broker(redis, settings.history_size, settings.history_ttl))
    await hub.start()
    cluster = create_cluster(redis, settings.lease_ttl)
    stop = asyncio.Event()
    coordination = compose_coordination(cluster)
    scenes = SceneService(
        settings.content_dir, hub, engine, clock, item_store=InventoryItems(engine),
        # The loader knows each market's ready uploads too (a display may name them).
        load=lambda folder: load_content(folder, lambda m: scenes.stored_assets.get(m, {})),
        stored_assets=await db.call(engine, assets_service.stored_refs, engine),
        announce=coordination.announce, market_lock=coordination.market_lock)
    wire_cluster(cluster, scenes)
    token_cache = accounts.TokenCache(on_revoke=revoke_notifier(cluster))
    wire_cluster_tokens(cluster, token_cache)
    await cluster.start()
    stories = stories_assembly.provider(engine, scenes)
    await scenes.start()
    # Uploads are processed by whichever node claims them (assets/jobs.py); their
    # files are in the asset store every node reads (local: this node alone).
    asset_files = storage.open_files(settings.data_dir, settings.asset_store, engine,
                                     settings.asset_s3_endpoint)
    log.info("stored assets: %s", asset_files.label)
    files = quicklook(scenes, asset_files, settings, collectors)  # /d/<m>/<d>.usdz and .glb
    await stories_assembly.start(settings, engine, scenes, stories)
    wire_cluster_content(cluster, stories, scenes, engine)
    # Several nodes: the shows' runners, cue reports and device counts are shared.
    shared_shows = SharedShows(cluster, redis, hub) if redis is not None else None
    shows = ShowService(scenes, hub, settings.show_lead_ms, engine=engine, shared=shared_shows)
    await shows.start()
    osc = osc_address = osc_close = None
    if settings.osc_port is not None:
        assert settings.osc_secret is not None  # Settings refuses a port without one
        osc = OscControl(shows.runner, settings.osc_secret,
                         parse_osc_allow_list(settings.osc_allow))
        transport, osc_close = await start_osc(settings.osc_host, settings.osc_port, osc)
        osc_address = transport.get_extra_info("sockname")
        log.info("OSC show control on udp://%s:%s", *osc_address[:2])
    pulse = PulseService(engine, hub, scenes, pulse_settings(settings),
                         transport=create_transport(redis),
                         cue_sources=[fired_cue_marks(shows)],
                         recipe_catalog=stories.recipe_names)
    pulse_bindings = PulseBindings(pulse, scenes, settings.pulse_binding_interval)
    scenes.add_provider(pulse_bindings)
    pulse.add_listener(pulse_bindings.poke)
    await pulse.start()
    if pulse.transport.distributed:  # one aggregator for the cluster (docs/pulse.md)
        cluster.singleton("pulse-aggregator", pulse.lead)
    reconciler = Reconciler(scenes, engine, stale_after=settings.inventory_stale_after,
                            interval=settings.reconcile_interval,
                            figures=cluster.figures("reconcile"),
                            announce=reconcile_announcer(cluster))
    # Every display state is checked against the inventory before the hub takes it.
    hub.add_guard(reconciler.guard)
    poller = Poller(reconciler, lambda: policy_of(settings), settings.pull_timeout)
    wire_cluster_reconciler(cluster, reconciler, poller)
    await reconciler.start()
    collectors.append(ReconcileCollector(reconciler, poller))
    # Single-writer duties: once across the cluster, under a lease (one node: always).
    cluster.singleton("reconcile-sweep", lambda: reconciler.run(stop))
    cluster.singleton("pull-feeds", lambda: poller.run(stop))

    def markets() -> list[str]:
        return sorted(scenes.content.markets) if scenes.content else []

    witness = WitnessService(engine, settings.witness_interval, settings.witness_timeout,
                             markets)
    collectors.append(WitnessCollector(witness))
    cluster.singleton("audit-witness", lambda: witness.run(stop))
    # The staff channel market/<m>/truth: holds, mismatches, moderation counts (#21).
    truth_feed = TruthFeed(engine, hub, markets, moderation.queue, moderation.queue_signature)
    cluster.singleton("truth-feed", lambda: truth_feed.run(stop))
    # Opening hours, display schedules, show starts, scheduled publishing: at each edge,
    # once per cluster (#24; tests/support/live.py passes `clock`: keep these lines).
    show_starts = ShowStarts(shows)  # shows that start by themselves

    async def stories_published(market: str) -> None:  # as after a curator's publish
        await stories.reload(market)
        await scenes.refresh(market)
        await cluster.notify("stories", {"market": market})

    publishing = ScheduledPublishing(engine, stories_published)
    scheduler = Scheduler(scenes, engine, cluster.node,
                          sources=[show_starts, publishing, DisplayPublishing(scenes)])
    cluster.singleton("scheduler", lambda: scheduler.run(stop))
    jobs = asset_jobs.AssetJobs(
        engine, asset_files, cluster.node, settings.lease_ttl, settings.asset_workers,
        lambda job: asset_jobs.options_from(settings, units=job.get("units", "m"),
                                            up=job.get("up", "y"), size=job.get("size")),
        lambda asset: publish_asset(scenes, engine, cluster, asset))
    tasks = [asyncio.create_task(jobs.run(stop), name="asset-jobs")]
    if settings.watch:
        tasks.append(asyncio.create_task(scenes.watch(stop), name="content-watch"))
    preview_links = PreviewLinks(await db.call(engine, shared_key, engine))
    return Services(
        settings=settings, engine=engine, hub=hub, cluster=cluster, scenes=scenes,
        stories=stories, shows=shows, shared_shows=shared_shows, pulse=pulse,
        pulse_bindings=pulse_bindings, reconciler=reconciler, poller=poller,
        replay_guard=ReplayGuard(engine, settings.inventory_replay_window,
                                 settings.inventory_v1_grace_days),
        witness=witness, truth_feed=truth_feed, show_starts=show_starts, scheduler=scheduler,
        asset_files=asset_files, asset_jobs=jobs, quicklook=files,
        submission_limiter=cluster.rate_limiter(
            "submissions", settings.submission_per_hour, settings.submission_burst),
        token_cache=token_cache, preview_links=preview_links,
        stream_auth=StreamAuth(engine, preview_links, token_cache),
        stream_limits=stream_limits(settings),
        client=client, osc=osc, osc_address=osc_address, metric_collectors=collectors,
        stop=stop, tasks=tasks, redis=redis, osc_close=osc_close)


async def shutdown(services: Services) -> None:
    """Stop what `assemble` started, the background duties first."""
    services.stop.set()
    for task in services.tasks:
        if task.get_name() == "content-watch":
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(task, 5)
    await services.reconciler.drain()
    await services.cluster.close()
    if services.osc_close is not None:
        await services.osc_close()
    await services.shows.close()
    await services.pulse.close()
    await services.hub.close()
    if services.redis is not None:
        await services.redis.close()
    services.engine.dispose()

