"""Pull feeds: a market may name a URL (JSON or CSV full snapshot) polled every N seconds
with ETag / If-Modified-Since. A timeout or garbage leaves the previous truth standing;
the failure is logged and counted, and after the TTL the displays go unverified."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlmodel import col, select

from holobazaar import db
from holobazaar.db import session_scope
from holobazaar.inventory import batches, feeds
from holobazaar.inventory.reconciler import Reconciler
from holobazaar.inventory.tables import FeedConfig

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)


def _http_client(timeout: float) -> httpx.AsyncClient:
    # httpx is imported only by a server that pulls a feed: 6 MB of RSS otherwise spent
    # on every node, which the fan-out budget (10,000 connections) feels.
    import httpx

    return httpx.AsyncClient(timeout=timeout, follow_redirects=False)


class Poller:
    def __init__(self, reconciler: Reconciler, policy: Callable[[], batches.Policy],
                 timeout: float) -> None:
        self.reconciler = reconciler
        self.engine = reconciler.engine
        self.policy = policy
        self.timeout = timeout
        self.due: dict[str, float] = {}
        self.failures = 0
        self.polls = 0

    def _configs(self) -> list[FeedConfig]:
        with session_scope(self.engine) as session:
            return list(session.exec(select(FeedConfig).where(
                col(FeedConfig.pull_url).is_not(None))))

    async def run(self, stop: asyncio.Event) -> None:
        client: httpx.AsyncClient | None = None  # made when a feed first falls due
        try:
            while not stop.is_set():
                try:
                    now = time.monotonic()
                    for feed in await db.call(self.engine, self._configs):
                        if self.due.get(feed.market, 0.0) <= now:
                            self.due[feed.market] = now + feed.pull_interval
                            client = client or _http_client(self.timeout)
                            await self.poll(client, feed)
                except Exception:  # keep polling whatever one round hits
                    log.exception("pull feed round failed")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 0.2)
        finally:
            if client is not None:
                await client.aclose()

    async def poll(self, client: httpx.AsyncClient, feed: FeedConfig) -> dict | None:
        import httpx  # loaded with the client (_http_client): cached by now

        market = self.reconciler.scenes.market(feed.market)
        if market is None or feed.pull_url is None:
            return None
        self.polls += 1
        await self.reconciler.figures.add("pull_polls")
        headers = {}
        if feed.etag:
            headers["If-None-Match"] = feed.etag
        if feed.last_modified:
            headers["If-Modified-Since"] = feed.last_modified
        try:
            response = await client.get(feed.pull_url, headers=headers)
            if response.status_code == 304:
                await db.call(self.engine, self._touch, feed.market)
                return {"not_modified": True}
            response.raise_for_status()
            rows = feeds.parse(response.content, feed.pull_format)
        except (httpx.HTTPError, feeds.FeedFormatError) as exc:
            self.failures += 1
            await self.reconciler.note("feed_failures")
            log.warning("pull feed %s for %s failed, previous truth stands: %s",
                        feed.pull_url, feed.market, exc)
            return None
        result = await db.call(
            self.engine, batches.apply_batch, self.engine, feed.market, rows, source="pull",
            body_digest=feeds.body_hash(response.content), key=None, policy=self.policy(),
            currency=market.market.market.currency, snapshot_rule=feed.disappear,
            actor=f"pull:{feed.market}")
        await db.call(self.engine, self._validators, feed.market, response.headers.get("etag"),
                      response.headers.get("last-modified"))
        await self.reconciler.feed_changed(feed.market, result)
        return result.response

    def _touch(self, market: str) -> None:
        # 304: the source answered and nothing changed, so the truth is fresh.
        with session_scope(self.engine) as session:
            feed = session.get(FeedConfig, market)
            if feed is not None:
                feed.last_feed_at = batches._now()
                session.add(feed)

    def _validators(self, market: str, etag: str | None, modified: str | None) -> None:
        with session_scope(self.engine) as session:
            feed = session.get(FeedConfig, market)
            if feed is not None:
                feed.etag, feed.last_modified = etag, modified
                session.add(feed)
