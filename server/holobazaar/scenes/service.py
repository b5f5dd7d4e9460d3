"""The scene service: keeps the loaded content and the inventory facts the compositor
needs, and publishes every composed state through the hub (the only way to clients)."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Protocol

from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool

from holobazaar import db
from holobazaar.channels import display_channel, market_channel, zone_channel
from holobazaar.scenes import incremental
from holobazaar.scenes.clock import Clock, SystemClock
from holobazaar.scenes.compositor import compose_display, compose_market, compose_zone
from holobazaar.scenes.inputs import AssetRef, Binding, ItemFacts, ItemStore
from holobazaar.scenes.loader import Content, MarketContent
from holobazaar.scenes.models import Display
from holobazaar.stream.broker import BrokerUnavailable
from holobazaar.stream.hub import Hub

log = logging.getLogger(__name__)


class BindingProvider(Protocol):
    """Another domain's data for displays (stories, pulse, reconciler notices). Called when
    a display is composed; must be quick and side-effect free (read from memory: when its
    data changes, the provider calls `SceneService.refresh(market)`)."""

    name: str

    def binding(self, market: MarketContent, display: Display) -> Binding | None: ...


def provider_items(provider: BindingProvider, market: MarketContent,
                   display: Display) -> set[str]:
    """SKUs (beyond the display's own) whose inventory changes alter what the provider
    binds into the display; providers declare them with an optional `items_of`."""
    items_of = getattr(provider, "items_of", None)
    return set(items_of(market, display)) if items_of is not None else set()


@dataclass(frozen=True)
class Replaced:
    """A display state put on its channel by `SceneService.publish_display`."""

    shown: dict  # what the channel carried before
    state: dict  # what was published
    offset: int  # its offset; -1 when the hub kept the state it had


class ContentError(Exception):
    def __init__(self, content: Content) -> None:
        super().__init__(content.report())
        self.content = content


class SceneService:
    def __init__(self, content_dir: Path, hub: Hub, engine: Engine,
                 clock: Clock | None = None, *, load: Callable[[Path], Content],
                 item_store: ItemStore,
                 stored_assets: dict[str, dict[str, AssetRef]] | None = None,
                 announce: Callable[[str, list[str]], Awaitable[None]] | None = None,
                 market_lock: Callable[[str], AbstractAsyncContextManager[None]] | None = None,
                 ) -> None:
        self.content_dir = content_dir
        # Reads the content folder: holobazaar.content.load_content (the scene files with
        # the shows and sample bindings of other domains), given by the assembly.
        self.load = load
        # The stored item facts (inventory's InventoryItems): seeded from the content
        # files when they are adopted, read back when another node changed them.
        self.item_store = item_store
        # "Now" for composing: the variant a display's schedule puts in force, the
        # market's opening hours (holobazaar.scenes.schedule; the scheduler republishes
        # at each edge).
        self.clock: Clock = clock or SystemClock()
        self.hub = hub
        self.engine = engine
        self.content: Content | None = None
        self.items: dict[str, dict[str, ItemFacts]] = {}
        self.last_problems: str = ""
        # Other domains' bindings (`add_provider`), built after this service (they use it).
        self._providers: list[BindingProvider] = []
        # Display states composed, by (display, language) ("" the default language): one
        # per language per change, however many clients follow each (tests read it).
        self.composed: Counter[tuple[str, str]] = Counter()
        # market -> name -> processed asset (holobazaar.assets: read before this service is
        # built, replaced through `set_stored_assets` when uploads change)
        self._stored_assets: dict[str, dict[str, AssetRef]] = stored_assets or {}
        # The shows domain's hook (`set_zone_show`): (market, zone) -> the zone's show
        # state, or None.
        self._zone_show: Callable[[str, str], dict | None] | None = None
        self._publish_lock = asyncio.Lock()
        # Zone channels carry the show's state and compose from content alone: their own
        # lock, so a show's cue never waits behind a feed batch composing displays (taken
        # inside the publish lock by `refresh`, never the other way round).
        self._zone_lock = asyncio.Lock()
        # channel -> (its state as this service last composed it, the time composed for)
        self._composed_at: dict[str, tuple[dict, datetime]] = {}
        self.incremental_publishes = 0  # display states published by the incremental path
        # With several nodes: tells the others which items changed here, so their copies
        # of `items` are reloaded (see `peer_items_changed`).
        self._announce = announce
        # With several nodes: a cluster-wide lock per market around "read the database,
        # compose, publish", so what is published follows the order of the commits.
        self._market_lock = market_lock

    # ---- what other domains register -------------------------------------------------

    def add_provider(self, provider: BindingProvider) -> None:
        """Another domain's bindings for displays, from the next composition on."""
        self._providers.append(provider)

    def set_zone_show(self, hook: Callable[[str, str], dict | None]) -> None:
        """The shows domain's (market, zone) -> the zone's show state, composed into each
        zone channel."""
        self._zone_show = hook

    @property
    def stored_assets(self) -> dict[str, dict[str, AssetRef]]:
        """market -> name -> processed (uploaded) asset."""
        return self._stored_assets

    def set_stored_assets(self, stored: dict[str, dict[str, AssetRef]]) -> None:
        """The processed uploads read again (holobazaar.assets); the caller recomposes."""
        self._stored_assets = stored

    # ---- loading -------------------------------------------------------------------

    async def start(self) -> None:
        content = await run_in_threadpool(self.load, self.content_dir)
        if not content.ok:
            raise ContentError(content)
        await self._adopt(content, previous=None)

    async def reload(self) -> bool:
        """Re-read the content folder; a broken edit is rejected and the last good
        content keeps streaming. Returns whether the new content was adopted."""
        content = await run_in_threadpool(self.load, self.content_dir)
        if not content.ok:
            self.last_problems = content.report()
            log.error("scene change rejected, still serving the last good version:\n%s",
                      self.last_problems)
            return False
        self.last_problems = ""
        await self._adopt(content, previous=self.content)
        return True

    async def _adopt(self, content: Content, previous: Content | None) -> None:
        for market_id, market in content.markets.items():
            old = previous.markets.get(market_id) if previous else None
            await db.call(self.engine, self.item_store.seed, market_id, market.seed_items(),
                          old.seed_items() if old else None)
            self.items[market_id] = await db.call(self.engine, self.item_store.load, market_id)
        self.content = content
        await self.refresh()

    # ---- composing -----------------------------------------------------------------

    def market(self, market_id: str) -> MarketContent | None:
        return self.content.markets.get(market_id) if self.content else None

    def compose(self, market: MarketContent) -> Iterable[tuple[str, dict]]:
        assert self.content is not None
        assets = self.asset_refs(market.id)
        items = self.items.get(market.id, {})
        titles: dict[str, str] = {}
        now = self.clock.now()
        for display in market.displays.values():
            state, errors = self.compose_display(market, display, items, assets, at=now)
            for error in errors:
                log.warning("display %s/%s node %s: %s", market.id, display.id, error.node,
                            error.message)
            titles[display.id] = state["display"]["title"]
            yield display_channel(market.id, display.id), state
            yield from self.compose_languages(market, display, items, assets, now)
        yield market_channel(market.id), compose_market(market.market, market.displays, titles,
                                                        now)

    def compose_languages(self, market: MarketContent, display: Display,
                          items: dict[str, ItemFacts] | None = None, assets=None,
                          at: datetime | None = None) -> Iterable[tuple[str, dict]]:
        """The display's channel in each of the market's other languages, composed once
        per language (every client of a language follows the same channel)."""
        for language in market.market.market.languages[1:]:
            state, _ = self.compose_display(market, display, items, assets, at=at,
                                            language=language)
            yield display_channel(market.id, display.id, language), state

    def asset_refs(self, market_id: str) -> dict[str, AssetRef]:
        """Content files by name, overlaid by processed (uploaded) assets of the market:
        an upload named like a file replaces it for that market's displays."""
        assert self.content is not None
        return {**self.content.asset_refs(), **self._stored_assets.get(market_id, {})}

    def compose_zone(self, market: MarketContent, zone_id: str) -> dict:
        state = compose_zone(market.market, zone_id, market.displays)
        if self._zone_show is not None:
            state["show"] = self._zone_show(market.id, zone_id)
        return state

    async def publish_zone(self, market_id: str, zone_id: str) -> None:
        """Recompose and publish one zone channel (a show's state changed)."""
        market = self.market(market_id)
        if market is None:
            return
        async with self._zone_lock:
            await self.hub.publish(zone_channel(market_id, zone_id),
                                   self.compose_zone(market, zone_id))

    async def publish_display(self, market_id: str, display_id: str,
                              change: Callable[[dict], dict | None]) -> Replaced | None:
        """The way a state composed elsewhere reaches a display channel (the reconciler's
        corrections, its drill): under the publish lock, so it cannot interleave with the
        service's own publishing, `change` gets the state the channel carries and returns
        the one to publish, or None to leave it. None: nothing was published (no such
        channel, or `change` left it)."""
        channel = display_channel(market_id, display_id)
        async with self._publish_lock:
            if not self.hub.has_channel(channel):
                return None
            shown = self.hub.snapshot(channel)[2]
            state = change(shown)
            if state is None:
                return None
            entry = await self.hub.publish(channel, state)
            # The language channels follow (the correction composed in each language).
            market = self.market(market_id)
            found = market.displays.get(display_id) if market is not None else None
            if found is not None and market is not None:
                await self.hub.publish_many(self.compose_languages(market, found))
        return Replaced(shown, state, entry.offset if entry else -1)

    def set_items(self, market_id: str, items: dict[str, ItemFacts]) -> None:
        """Replace this node's copy of a market's item facts (read again from the store);
        the caller recomposes (`refresh`)."""
        self.items[market_id] = items

    def bindings(self, market: MarketContent, display: Display,
                 language: str | None = None) -> dict[str, Binding]:
        """The providers' bindings; in a `language`, from those that translate (an optional
        `binding_in(market, display, language)`), the others' as they are."""
        found: dict[str, Binding] = {}
        for provider in self._providers:
            translating = getattr(provider, "binding_in", None) if language else None
            binding = (translating(market, display, language) if translating is not None
                       else provider.binding(market, display))
            if binding is not None:
                found[provider.name] = binding
        return found

    def compose_display(self, market: MarketContent, display: Display,
                        items: dict[str, ItemFacts] | None = None, assets=None,
                        at: datetime | None = None, language: str | None = None):
        """The display's state at `at` (default: the clock's now), in `language` (None:
        the market's default)."""
        assert self.content is not None
        self.composed[(display.id, language or "")] += 1
        return compose_display(
            market.market, display,
            self.items.get(market.id, {}) if items is None else items,
            self.asset_refs(market.id) if assets is None else assets,
            self.bindings(market, display, language), self.clock.now() if at is None else at,
            language=language)

    async def refresh(self, market_id: str | None = None) -> None:
        """Recompose and publish (a market's or every) channel: the hub sends only what
        changed. Binding providers call this when their data changes."""
        assert self.content is not None
        async with self._publish_lock:
            for market in self.content.markets.values():
                if market_id is None or market.id == market_id:
                    at = self.clock.now()
                    for channel, state in self.compose(market):
                        await self.hub.publish(channel, state)
                        self._remember(channel, at)
                    async with self._zone_lock:  # composed as published: the show's latest
                        for zone in market.market.zones:
                            await self.hub.publish(zone_channel(market.id, zone.id),
                                                   self.compose_zone(market, zone.id))

    def _remember(self, channel: str, at: datetime) -> None:
        """The channel's state as this service just composed it, and for when: the base of
        the next incremental change (used while the channel still holds that object)."""
        state = self.hub.state_of(channel)
        if state is not None:
            self._composed_at[channel] = (state, at)

    async def _publish_display(self, market: MarketContent, display: Display,
                               language: str | None, items: dict[str, ItemFacts],
                               assets: dict[str, AssetRef], at: datetime,
                               changed: set[str], binding_items: set[str]) -> None:
        """Publish a display's channel after `changed` items changed: only the nodes that
        depend on them recomposed, with their patch (scenes/incremental.py), when the
        channel still holds what this service composed last; else composed whole."""
        channel = display_channel(market.id, display.id, language)
        last = self._composed_at.get(channel)
        if last is not None and self.hub.state_of(channel) is last[0]:
            result = incremental.recompose(
                market.market, display, items, assets,
                self.bindings(market, display, language), at, language, last[0], last[1],
                changed, binding_items)
            if result is not None:
                self.composed[(display.id, language or "")] += 1
                self.incremental_publishes += 1
                state, ops, _ = result
                await self.hub.publish(channel, state, patch=(last[0], ops))
                self._remember(channel, at)
                return
        state, _ = self.compose_display(market, display, items, assets, at=at,
                                        language=language)
        await self.hub.publish(channel, state)
        self._remember(channel, at)

    async def items_changed(self, market_id: str, facts: Iterable[ItemFacts],
                            removed: Iterable[str] = ()) -> None:
        """Inventory changed (or items were `removed`): recompose the displays bound to
        those items."""
        if self.market(market_id) is None:
            return
        facts = list(facts)
        gone = set(removed)
        changed = {f.sku for f in facts} | gone
        self.items.setdefault(market_id, {}).update({f.sku: f for f in facts})
        for sku in gone:
            self.items[market_id].pop(sku, None)
        if self._announce is not None:
            # First, so other nodes' copies are fresh about when clients see the change.
            await self._announce(market_id, sorted(changed))
        try:
            if self._market_lock is None:
                await self._recompose(market_id, changed)
                return
            # Two nodes changing one item at once may publish in the other order than they
            # committed: under the lock, compose from the database as it is now instead.
            async with self._market_lock(market_id):
                await self._reload(market_id, sorted(changed))
                await self._recompose(market_id, changed)
        except BrokerUnavailable as exc:
            # The change is committed and in our copy; what clients see catches up when the
            # broker is back (every node republishes from the database on reconnect).
            log.warning("scenes: %s: displays not published yet (%s)", market_id, exc)

    async def _reload(self, market_id: str, skus: list[str] | None) -> None:
        """Our copy of these items from the database. The reconciler's overlays (a held
        item's notice, `verified`) are not stored there: they stay as they were here."""
        fresh = await db.call(self.engine, self.item_store.load, market_id)
        current = self.items.setdefault(market_id, {})
        for sku in (list(set(current) | set(fresh)) if skus is None else skus):
            if sku not in fresh:
                current.pop(sku, None)
                continue
            old = current.get(sku)
            current[sku] = fresh[sku] if old is None else replace(
                fresh[sku], notice=old.notice, verified=old.verified)

    async def _recompose(self, market_id: str, changed: set[str]) -> None:
        market = self.market(market_id)
        if market is None:
            return
        assert self.content is not None
        assets = self.asset_refs(market_id)
        items = self.items[market_id]
        languages = [None, *market.market.market.languages[1:]]
        async with self._publish_lock:
            at = self.clock.now()
            for display in market.displays.values():
                deps = incremental.node_dependencies(display)
                from_providers: set[str] = set()
                for provider in self._providers:
                    from_providers |= provider_items(provider, market, display)
                if not (changed & (deps.display_items | deps.by_item.keys() | from_providers)):
                    continue
                for language in languages:
                    await self._publish_display(market, display, language, items, assets,
                                                at, changed, from_providers)
                # A feed batch recomposes display after display: let a show's cue, a
                # zone's state and the fan-out of what is published go out in between
                # (at 20 displays x 500 clients, batches held cues back by ~300 ms).
                await asyncio.sleep(0)

    async def peer_items_changed(self, market_id: str | None,
                                 skus: list[str] | None = None) -> None:
        """Another node changed inventory (and publishes it): reload our copy from the
        database. None: anything may have changed (Redis lost its data, or we missed
        messages): reload everything and republish, since the channels' shared state may
        now be older than the database."""
        if market_id is not None:
            await self._reload(market_id, skus)
            return
        for market in list(self.items):
            if self._market_lock is None:
                await self._reload(market, None)
                continue
            async with self._market_lock(market):
                await self._reload(market, None)
                if self.content is not None:
                    await self.refresh(market)

    # ---- watching ------------------------------------------------------------------

    async def watch(self, stop: asyncio.Event) -> None:
        from watchfiles import awatch

        paths = [p for p in (self.content_dir / "scenes", self.content_dir / "assets")
                 if p.exists()]
        if not paths:
            return
        async for _changes in awatch(*paths, stop_event=stop, debounce=200, step=50):
            try:
                await self.reload()
            except Exception:  # a reload must never take the server down
                log.exception("reloading content failed")
