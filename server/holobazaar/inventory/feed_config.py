"""A market's feed configuration in the database: the webhook secret and the pull
source (audited). The feed routes and `holobazaar inventory secret` use these."""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy.engine import Engine

from holobazaar import db
from holobazaar.audit import service as audit
from holobazaar.db import session_scope
from holobazaar.inventory import batches
from holobazaar.inventory.tables import FeedConfig


@db.point
def secret_of(engine: Engine, market: str) -> str | None:
    with session_scope(engine) as session:
        feed = session.get(FeedConfig, market)
        return feed.secret if feed else None


def feed_out(feed: FeedConfig) -> dict[str, Any]:
    """The configuration as the API shows it (never the secret itself)."""
    return {"market": feed.market, "has_secret": feed.secret is not None,
            "pull_url": feed.pull_url, "pull_format": feed.pull_format,
            "pull_interval": feed.pull_interval, "disappear": feed.disappear,
            "last_feed_at": feed.last_feed_at, "revision": feed.revision}


def read_feed(engine: Engine, market: str) -> dict[str, Any]:
    with session_scope(engine) as session:
        return feed_out(session.get(FeedConfig, market) or FeedConfig(market=market))


def configure_pull(engine: Engine, market: str, pull_url: str | None, pull_format: str,
                   pull_interval: float, disappear: str, actor: str,
                   audited: dict[str, Any]) -> dict[str, Any]:
    """Set the pull source (its cache validators reset); `audited`: the change as sent."""
    with session_scope(engine) as session:
        feed = batches.lock_feed(session, market)
        feed.pull_url = pull_url
        feed.pull_format, feed.pull_interval = pull_format, pull_interval
        feed.disappear, feed.etag, feed.last_modified = disappear, None, None
        feed.last_feed_at = feed.last_feed_at or batches._now()
        session.add(feed)
        audit.append(session, actor, "inventory.feed", market, audited)
        return feed_out(feed)


def new_secret(engine: Engine, market: str, actor: str) -> str:
    """Generate and store a market's webhook secret (replacing any); returned once."""
    secret = "hbs_" + secrets.token_urlsafe(32)
    with session_scope(engine) as session:
        feed = batches.lock_feed(session, market)
        feed.secret = secret
        # The staleness clock starts when a feed is configured, not at the epoch.
        feed.last_feed_at = feed.last_feed_at or batches._now()
        session.add(feed)
        audit.append(session, actor, "inventory.secret", market, {"rotated": True})
    return secret
