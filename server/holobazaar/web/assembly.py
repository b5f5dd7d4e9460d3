"""The assembly's parts that are not the app factory itself (web/app.py): the domain
settings made from the one Settings, and the cluster wiring that keeps each node's
copies (inventory, stories, stored assets, the reconciler's state) current when another
node changes them. Moved here from web/app.py (#25 step 3); the lifespan calls them."""

from __future__ import annotations

import asyncio
import logging
import re

from sqlalchemy.engine import Engine

from holobazaar.accounts import service as accounts
from holobazaar.assets import storage
from holobazaar.assets.routes import refresh_scenes
from holobazaar.cluster import Cluster
from holobazaar.config import Settings
from holobazaar.inventory.pull import Poller
from holobazaar.inventory.reconciler import Reconciler
from holobazaar.pulse.service import PulseSettings
from holobazaar.quicklook.metrics import QuickLookCollector
from holobazaar.quicklook.models import AssetReader
from holobazaar.quicklook.service import QuickLook
from holobazaar.scenes.service import SceneService
from holobazaar.stream.connection import StreamLimits

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


def wire_cluster(cluster: Cluster, scenes: SceneService) -> None:
    """Keep each node's inventory copy current when another node changes it."""
    if not cluster.distributed:
        return

    async def announce(market: str, skus: list[str]) -> None:
        await cluster.notify("inventory", {"market": market, "skus": skus})

    async def on_inventory(data: dict | None) -> None:
        if data is None:
            await scenes.peer_items_changed(None)
        elif isinstance(data, dict) and isinstance(data.get("market"), str):
            skus = data.get("skus")
            await scenes.peer_items_changed(data["market"],
                                            skus if isinstance(skus, list) else None)

    scenes.announce = announce
    scenes.market_lock = lambda market: cluster.lock(f"compose:{market}")
    cluster.listen("inventory", on_inventory)


def wire_cluster_tokens(cluster: Cluster, engine: Engine) -> None:
    """A token revoked on this node is forgotten by the other nodes' token caches at once
    (accounts.service.TokenCache; without the message they would believe it for up to
    TOKEN_CACHE_SECONDS). A reconnect (messages may be lost) forgets every cached token."""
    if not cluster.distributed:
        return
    loop = asyncio.get_running_loop()

    def revoked(revoked_in: Engine, token_id: int) -> None:
        if str(revoked_in.url) == str(engine.url):  # revoke_token may run in a thread
            loop.call_soon_threadsafe(lambda: loop.create_task(
                cluster.notify("tokens", {"id": token_id})))

    async def on_tokens(data) -> None:
        token_id = data.get("id") if isinstance(data, dict) else None
        accounts.token_cache(engine).forget(token_id if isinstance(token_id, int) else None)

    accounts.REVOKE_LISTENERS.append(revoked)
    cluster.listen("tokens", on_tokens)


def wire_cluster_content(cluster: Cluster, state) -> None:
    """Published stories and stored assets are cached per node: when another node changes
    them, reload this node's copy and recompose (the hub sends only what changed)."""
    if not cluster.distributed:
        return

    def markets_of(data, known) -> list[str]:
        if isinstance(data, dict) and isinstance(data.get("market"), str):
            return [data["market"]]
        return sorted(known)  # None: a reconnect, reload everything

    async def on_stories(data) -> None:
        for market in markets_of(data, state.stories.markets):
            await state.stories.reload(market)
            await state.scenes.refresh(market)

    async def on_assets(data) -> None:
        markets = markets_of(data, state.scenes.content.markets if state.scenes.content else [])
        await refresh_scenes(state, markets[0] if len(markets) == 1 else None)

    cluster.listen("stories", on_stories)
    cluster.listen("assets", on_assets)


def wire_cluster_reconciler(cluster: Cluster, reconciler: Reconciler, poller: Poller) -> None:
    """Another node changed inventory (its holds may have changed too): resync this node's
    reconciler from the database. Another node recorded or resolved mismatches: reload the
    open set. Another node configured a feed: reload it and poll it afresh (if this node
    polls). Counters every node shows (sweeps, feed failures) live in Redis."""
    reconciler.figures = cluster.figures("reconcile")
    if not cluster.distributed:
        return

    def market_of(data) -> str | None:
        market = data.get("market") if isinstance(data, dict) else None
        return market if isinstance(market, str) else None

    async def announce(market: str) -> None:
        await cluster.notify("reconcile", {"market": market})

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

    reconciler.announce = announce
    cluster.listen("inventory", on_inventory)
    cluster.listen("reconcile", on_reconcile)
    cluster.listen("feed", on_feed)


ASSET_URL = re.compile(r"^/assets/(?P<hash>[0-9a-f]{64})\.(?P<ext>[a-z0-9]{2,5})$")


def asset_reader(state) -> AssetReader:
    """How the phone AR files read the models and images a display state names: the
    content folder's files, else the stored uploads (through the node's asset files,
    which fetch from a shared store). A file that cannot be had reads as missing: the
    model is left out of the file, with a log line."""

    def read(url: str) -> bytes | None:
        match = ASSET_URL.match(url)
        if match is None:
            return None
        content = state.scenes.content
        asset = content.asset_by_hash(match["hash"]) if content else None
        try:
            if asset is not None:
                return asset.path.read_bytes()
            files = getattr(state, "asset_files", None)
            if files is not None:
                path = files.fetch(match["hash"], match["ext"])
            else:
                path = storage.path_for(state.settings.data_dir, match["hash"], match["ext"])
            return path.read_bytes() if path is not None and path.is_file() else None
        except Exception as exc:  # a store that is down: the model is left out, logged
            log.warning("phone AR file: cannot read %s: %s", url, exc)
            return None

    return read


def quicklook(state, settings: Settings) -> QuickLook:
    """The phone AR files (USDZ, GLB) of displays, cached under the data folder; their
    figures on /metrics."""
    files = QuickLook(settings.data_dir / "quicklook", asset_reader(state))
    state.metric_collectors.append(QuickLookCollector(files))
    return files
