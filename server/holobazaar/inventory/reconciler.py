"""The reconciler: what every display shows must match what the inventory says.

The truth is the scene service's item facts (loaded from the database, updated by every
accepted batch); on top of it go the overlays this module owns: a held item shows "price
at the stall", and every item of a market whose feed is silent past the TTL is marked
unverified. A display's expected state is the compositor's output for those facts; the
state the hub last published is what clients show. Any difference is a typed mismatch,
recorded (inventory/mismatches.py: database + audit log) and corrected at once by
publishing the expected state through the hub - the only path to clients.

Several nodes: the periodic sweep runs on one of them (a lease), every node applies the
batches it receives. What a curator sees (open mismatches, time to correct, held changes,
unverified displays, counts) is read from the shared database and the shared `figures`
(holobazaar.cluster.shared_figures), so every node answers the same. A node that records or
resolves mismatches calls `announce(market)`; the others reload their open set and the
market's staleness from the database (`reload_open`); `resync(market)` reloads
everything (the truth, held changes, open mismatches) after another node's change.
The drill that scrambles displays to prove all this is inventory/drill.py."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import col, select

from holobazaar import db
from holobazaar.cluster.shared_figures import Figures, LocalFigures
from holobazaar.db import as_utc, session_scope
from holobazaar.inventory import mismatches
from holobazaar.inventory import service as inventory_service
from holobazaar.inventory.batches import FOUR_EYES, BatchResult, open_held
from holobazaar.inventory.guard import PriceGuard
from holobazaar.inventory.mismatches import Found, OpenKey, classify
from holobazaar.inventory.tables import FeedConfig, HeldChange
from holobazaar.scenes import schedule
from holobazaar.scenes.inputs import ItemFacts
from holobazaar.scenes.loader import MarketContent
from holobazaar.scenes.models import Display, iter_nodes
from holobazaar.scenes.service import SceneService
from holobazaar.stream.broker import BrokerUnavailable

log = logging.getLogger(__name__)

HELD_NOTICE = "price at the stall"


def _now() -> datetime:
    return datetime.now(UTC)


def bound_skus(display: Display) -> set[str]:
    return set(display.items) | {n.item for n, _ in iter_nodes(display.nodes) if n.item}


# An identity mismatch a check found and is writing (its row id is not known yet).
UNRECORDED = 0


class Reconciler:
    def __init__(self, scenes: SceneService, engine: Engine, *, stale_after: float,
                 interval: float, figures: Figures | None = None,
                 announce: Callable[[str], Awaitable[None]] | None = None) -> None:
        self.scenes = scenes
        self.hub = scenes.hub
        self.engine = engine
        self.stale_after = stale_after
        self.interval = interval
        self.held: dict[str, set[str]] = {}
        self.stale: dict[str, datetime] = {}  # market -> since when
        self.feeds: dict[str, FeedConfig] = {}
        self.revisions: dict[str, int] = {}
        self.open: dict[OpenKey, int] = {}
        # This node's own counters; what curators see is `figures` and the database.
        self.counts: dict[str, int] = {"detected": 0, "corrected": 0, "sweeps": 0,
                                       "feed_failures": 0, "batches": 0, "guarded": 0}
        # Several nodes: shared figures (Cluster.figures), and `announce` tells the other
        # nodes that a market's open mismatches changed.
        self.figures: Figures = figures if figures is not None else LocalFigures()
        self.announce = announce
        self._lock = asyncio.Lock()
        self._background: set[asyncio.Task] = set()
        # display key -> (inputs, expected state, objects the inputs' ids refer to)
        self._expected: dict[tuple[str, str], tuple[tuple, dict, tuple]] = {}
        # The publish guard (web/app.py plugs it into the hub) and what it found, waiting
        # to be written: (market, mismatches, detected at).
        self.guard = PriceGuard(self)
        self._guarded: list[tuple[str, list[Found], datetime]] = []
        self._guard_writer: asyncio.Task | None = None

    # ---- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        await db.call(self.engine, self._load_state)
        self.hub.add_drift_listener(self.on_drift)
        for market in self.markets():
            self._apply_overlays(market)
            if self.held.get(market.id):
                await self.scenes.refresh(market.id)

    def _load_state(self) -> None:
        with session_scope(self.engine) as session:
            self.held = {}
            for held in session.exec(select(HeldChange).where(
                    col(HeldChange.decision).is_(None), HeldChange.reason != FOUR_EYES)):
                self.held.setdefault(held.market, set()).add(held.sku)
            self.feeds = {f.market: f for f in session.exec(select(FeedConfig))}
            self.revisions = {m: f.revision for m, f in self.feeds.items()}
        self._load_open()

    def _load_open(self) -> None:
        self.open = mismatches.open_mismatches(self.engine)

    async def note(self, name: str, amount: int = 1) -> None:
        """Count an event on this node and in the figures every node shows."""
        self.counts[name] += amount
        await self.figures.add(name, amount)

    async def _announce(self, market: str) -> None:
        if self.announce is not None:
            await self.announce(market)

    # ---- several nodes -------------------------------------------------------------

    async def resync(self, market: str | None = None) -> None:
        """Another node changed the truth (None: anything may have changed): reload the
        items, held changes, open mismatches and staleness of `market` (or of every
        market) from the database and put the overlays back on the items."""
        await db.call(self.engine, self._refresh_feeds)
        await db.call(self.engine, self._load_open)
        for found in self.markets():
            if market is None or found.id == market:
                self.revisions[found.id] = -1  # force the reload
                await self._sync_from_database(found.id)
                self._stale_from_database(found.id)
                self._apply_overlays(found)

    async def reload_open(self, market: str | None = None) -> None:
        """Another node recorded or resolved mismatches (or marked a market unverified):
        reload the open set and staleness. Nothing is recorded or published here: the
        node that saw the change did both."""
        await db.call(self.engine, self._refresh_feeds)
        await db.call(self.engine, self._load_open)
        for found in self.markets():
            if market is None or found.id == market:
                self._stale_from_database(found.id)
                self._apply_overlays(found)

    def _stale_from_database(self, market: str) -> None:
        """Staleness as the database says, without recording a transition: the node that
        saw the transition recorded it (an open `stale` mismatch per display)."""
        if any(m == market and kind == "stale" for m, _, _, kind in self.open):
            self.stale.setdefault(market, _now())
        elif not self.feed_silent(market, _now()):
            self.stale.pop(market, None)

    async def run(self, stop: asyncio.Event) -> None:
        """The periodic full sweep (and stale check)."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval)
            if stop.is_set():
                break
            try:
                await self.sweep()
            except BrokerUnavailable as exc:  # Redis restarting: the next round repairs
                log.warning("reconcile sweep: %s", exc)
            except Exception:  # the sweep must keep running whatever one round hits
                log.exception("reconcile sweep failed")

    async def drain(self) -> None:
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)

    def markets(self) -> list[MarketContent]:
        content = self.scenes.content
        return list(content.markets.values()) if content else []

    # ---- truth and overlays --------------------------------------------------------

    def _apply_overlays(self, market: MarketContent) -> None:
        items = self.scenes.items.setdefault(market.id, {})
        held = self.held.get(market.id, set())
        verified = market.id not in self.stale
        for sku, facts in items.items():
            notice = HELD_NOTICE if sku in held else None
            # Compared before copying: every change runs this over the market's items.
            if facts.notice != notice or facts.verified != verified:
                items[sku] = replace(facts, notice=notice, verified=verified)

    def feed_silent(self, market: str, now: datetime) -> bool:
        feed = self.feeds.get(market)
        if feed is None or (feed.secret is None and feed.pull_url is None):
            return False  # no feed configured: the content seed is the only truth
        last = as_utc(feed.last_feed_at)
        return last is None or now - last > timedelta(seconds=self.stale_after)

    async def feed_changed(self, market_id: str, result: BatchResult) -> None:
        """A batch (or a decision on held changes) committed: update the facts, publish the
        displays bound to changed items, and check them."""
        market = self.scenes.market(market_id)
        if market is None:
            return
        await self.note("batches")
        held = self.held.setdefault(market_id, set())
        held.difference_update(result.released)
        held.update(result.held)
        items = self.scenes.items.setdefault(market_id, {})
        changed = [f for f in result.applied]
        for sku in result.held + result.released:
            if sku in items and sku not in {f.sku for f in changed}:
                changed.append(items[sku])
        if result.bumped:  # a feed batch or decision: reload the feed row it moved
            await db.call(self.engine, self._reload_feed, market_id, True)
        transitions = self._update_stale(market_id, _now())
        self._apply_overlays(market)
        changed = [self._overlay(market_id, f) for f in changed]
        for _, now_stale in transitions:
            await self._record_stale(market, now_stale)
        await self.scenes.items_changed(market_id, changed, removed=result.removed)
        skus = {f.sku for f in changed} | set(result.removed)
        # items_changed just composed and published these displays under the publish lock,
        # so their states equal the truth by construction; check only their bindings here
        # (the periodic sweep compares every state).
        await self.check(market, [d for d in market.displays.values() if bound_skus(d) & skus],
                         compare=False)

    def _overlay(self, market: str, facts: ItemFacts) -> ItemFacts:
        return replace(facts, notice=HELD_NOTICE if facts.sku in self.held.get(market, ())
                       else None, verified=market not in self.stale)

    async def reload_feed(self, market: str) -> None:
        """The market's feed configuration changed (secret, pull source): reload it."""
        await db.call(self.engine, self._reload_feed, market)

    def _reload_feed(self, market: str, after_change: bool = False) -> None:
        with session_scope(self.engine) as session:
            feed = session.get(FeedConfig, market)
            if feed is None:
                return
            self.feeds[market] = feed
            # After our own change the revision moved by exactly one; more means another
            # writer (the import command, another node) committed too: leave the old
            # revision so the next sweep reloads everything from the database.
            if not after_change or feed.revision == self.revisions.get(market, 0) + 1:
                self.revisions[market] = feed.revision

    def _update_stale(self, market: str, now: datetime) -> list[tuple[str, bool]]:
        """Returns [(market, now_stale)] transitions."""
        silent = self.feed_silent(market, now)
        if silent and market not in self.stale:
            self.stale[market] = now
            return [(market, True)]
        if not silent and market in self.stale:
            del self.stale[market]
            return [(market, False)]
        return []

    # ---- checking ------------------------------------------------------------------

    async def sweep(self, market_id: str | None = None) -> dict[str, int]:
        started = time.perf_counter()
        totals = {"displays": 0, "mismatches": 0}
        await db.call(self.engine, self._refresh_feeds)
        for market in self.markets():
            if market_id is not None and market.id != market_id:
                continue
            await self._sync_from_database(market.id)
            transitions = self._update_stale(market.id, _now())
            self._apply_overlays(market)
            for _, now_stale in transitions:
                await self._record_stale(market, now_stale)
            found = await self.check(market, list(market.displays.values()))
            totals["displays"] += len(market.displays)
            totals["mismatches"] += found
        await self.note("sweeps")
        await self.figures.put("last_sweep_seconds", time.perf_counter() - started)
        return totals

    def _refresh_feeds(self) -> None:
        with session_scope(self.engine) as session:
            read = {f.market: f for f in session.exec(select(FeedConfig))}
        # A batch that committed while this read ran has already put its newer row here
        # (`_reload_feed`): keep it, or the market would look silent again for one sweep.
        self.feeds = {market: current if (current := self.feeds.get(market)) is not None
                      and current.revision > feed.revision else feed
                      for market, feed in read.items()}

    async def _sync_from_database(self, market: str) -> None:
        """Another process (the import command, another node) changed the truth: reload."""
        feed = self.feeds.get(market)
        if feed is None or feed.revision == self.revisions.get(market, 0):
            return
        items = await db.call(self.engine, inventory_service.load_items, self.engine, market)
        held = await db.call(self.engine, lambda: {h.sku for h in _open_held(self.engine, market)})
        self.revisions[market] = feed.revision
        self.held[market] = held
        self.scenes.set_items(market, items)
        found = self.scenes.market(market)
        if found is not None:
            self._apply_overlays(found)
            await self.scenes.refresh(market)  # a normal update, not a mismatch

    async def check(self, market: MarketContent, displays: list[Display],
                    compare: bool = True) -> int:
        """Compare displays with the truth; correct and record every difference."""
        assert self.scenes.content is not None
        assets = self.scenes.asset_refs(market.id)  # as the scene service composes
        items = self.scenes.items.get(market.id, {})
        found: list[Found] = []
        corrected: list[tuple[str, int]] = []
        resolved_identity: list[tuple[str, str]] = []
        claimed: list[OpenKey] = []
        try:
            for index, display in enumerate(displays):
                if index and index % 100 == 0:
                    await asyncio.sleep(0)  # let clients be served during a long sweep
                for sku in sorted(bound_skus(display)):
                    key = (market.id, display.id, sku, "identity")
                    if sku not in items and key not in self.open:
                        # Claimed now, before this check awaits anything: a sweep and a feed
                        # batch's check running side by side recorded it twice.
                        self.open[key] = UNRECORDED
                        claimed.append(key)
                        found.append(Found(display.id, sku, "identity", "a known item",
                                           "unknown or removed SKU", fixable=False))
                    elif sku in items and key in self.open:
                        resolved_identity.append((display.id, sku))
                if not compare:
                    continue
                # Composed and compared under the scene service's publish lock (no publish
                # interleaves), and published by it when the channel shows something else.
                correction = partial(self._correction, market, display, items, assets)
                replaced = await self.scenes.publish_display(market.id, display.id, correction)
                if replaced is not None:
                    found.extend(classify(display.id, replaced.state, replaced.shown))
                    corrected.append((display.id, replaced.offset))
            if found or corrected or resolved_identity:
                await self._record(market.id, found, corrected, resolved_identity)
        finally:
            for claim in claimed:  # not written (an error on the way): found again next time
                if self.open.get(claim) == UNRECORDED:
                    del self.open[claim]
        return len(found)

    def _correction(self, market: MarketContent, display: Display,
                    items: dict[str, ItemFacts], assets: Any, shown: dict) -> dict | None:
        """The state to publish instead of `shown`, or None when it is right."""
        expected = self._expected_state(market, display, items, assets)
        return None if shown == expected else expected

    def _expected_state(self, market: MarketContent, display: Display,
                        items: dict[str, ItemFacts], assets: Any) -> dict:
        """The compositor's state for the display, reused while its inputs are the same
        objects and values (composing is pure): a sweep then mostly compares."""
        bindings = self.scenes.bindings(market, display)
        stored = self.scenes.stored_assets
        inputs = (id(self.scenes.content), id(stored), id(market.market), id(display),
                  tuple(items.get(sku) for sku in sorted(bound_skus(display))),
                  repr(sorted(bindings.items())),
                  # the display's variant and the market's hours now (#24: they change
                  # at schedule edges with nothing else changing)
                  schedule.time_signature(market.market, display, self.scenes.clock.now()))
        key = (market.id, display.id)
        cached = self._expected.get(key)
        if cached is not None and cached[0] == inputs:
            return cached[1]
        expected, _ = self.scenes.compose_display(market, display, items, assets)
        # Keep the objects alive so their ids cannot be reused by others.
        self._expected[key] = (inputs, expected,
                               (self.scenes.content, stored, market.market, display))
        return expected

    def expected_state(self, market: MarketContent, display: Display) -> dict:
        """The display's state for the truth as it is now (the publish guard's correction)."""
        return self._expected_state(market, display, self.scenes.items.get(market.id, {}),
                                    self.scenes.asset_refs(market.id))

    # ---- recording -----------------------------------------------------------------

    async def _record(self, market: str, found: list[Found], corrected: list[tuple[str, int]],
                      resolved_identity: list[tuple[str, str]]) -> None:
        rows = await db.call(self.engine, mismatches.write_findings, self.engine, market,
                             found, corrected, resolved_identity, self.open, _now(),
                             {d for d, _ in corrected})
        for f, row_id in zip(found, rows, strict=True):
            self.counts["detected"] += 1
            if not f.fixable:
                self.open[(market, f.display, f.sku, "identity")] = row_id
        for display, sku in resolved_identity:
            self.open.pop((market, display, sku, "identity"), None)
        self.counts["corrected"] += len(corrected)
        if resolved_identity or any(not f.fixable for f in found):
            await self._announce(market)

    async def _record_stale(self, market: MarketContent, now_stale: bool) -> None:
        await self.scenes.refresh(market.id)
        feed = self.feeds.get(market.id)
        opened = await db.call(
            self.engine, mismatches.write_stale, self.engine, market, now_stale, self.open,
            as_utc(feed.last_feed_at) if feed else None, self.stale_after, _now())
        self.counts["detected"] += opened
        await self._announce(market.id)

    def note_guarded(self, market: str, display: str, expected: dict[str, Any],
                     shown: dict[str, Any]) -> None:
        """The publish guard replaced a display state before the hub took it (`expected`
        and `shown`: the items that differed, by SKU): record the mismatches (resolution
        `guarded`, resolved when detected: no client received them), in the background,
        in one transaction per burst."""
        found = classify(display, {"items": expected}, {"items": shown})
        self._guarded.append((market, found, _now()))
        if self._guard_writer is None:
            task = asyncio.get_running_loop().create_task(self._write_guarded_soon())
            self._guard_writer = task
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _write_guarded_soon(self) -> None:
        try:
            while self._guarded:
                batch, self._guarded = self._guarded, []
                try:
                    await db.call(self.engine, mismatches.write_guarded, self.engine, batch)
                except Exception:  # recording must not stop; the corrections stand
                    log.exception("recording the guard's findings failed")
                    continue
                for _, found, _ in batch:
                    self.counts["detected"] += len(found)
                self.counts["guarded"] += len(batch)
        finally:
            self._guard_writer = None

    def on_drift(self, channel: str, offset: int, client_hash: str, server_hash: str) -> None:
        """A client's heartbeat hash differs from ours at that offset: the connection has
        already resynced it with a snapshot; record the event."""
        parts = channel.split("/")
        market, display = parts[1], parts[3] if len(parts) == 4 else parts[-1]
        found = Found(display, None, "client_drift",
                      {"offset": offset, "state_hash": server_hash},
                      {"offset": offset, "state_hash": client_hash})
        task = asyncio.get_running_loop().create_task(self._record_drift(market, found))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _record_drift(self, market: str, found: Found) -> None:
        # The connection already resynced the client: recorded as corrected when detected.
        await db.call(self.engine, mismatches.write_findings, self.engine, market, [found], [],
                      [], self.open, _now(), {found.display})
        self.counts["detected"] += 1

    # ---- figures -------------------------------------------------------------------

    async def summary(self, market_id: str) -> dict[str, Any]:
        """What curators see for a market: from the database and the shared figures, the
        same on every node."""
        return (await self.summaries([market_id]))[market_id]

    async def summaries(self, markets: list[str]) -> dict[str, dict[str, Any]]:
        shared = await self.figures.read()
        stored = await db.call(self.engine, mismatches.read_figures, self.engine, markets)
        now = _now()
        out = {}
        for market_id in markets:
            market = self.scenes.market(market_id)
            out[market_id] = mismatches.summary(market_id, stored[market_id],
                                                len(market.displays) if market else 0,
                                                shared, now)
        return out

    async def correction_times(self, market: str | None = None) -> list[float]:
        """Seconds from detection to correction of the recent resolved mismatches."""
        def read() -> list[float]:
            with session_scope(self.engine) as session:
                return mismatches.correction_times(session, market)

        return await db.call(self.engine, read)


def _open_held(engine: Engine, market: str) -> list[HeldChange]:
    # A four-eyes manual change masks nothing: the stored price stands until approved.
    return [h for h in open_held(engine, market) if h.reason != FOUR_EYES]
