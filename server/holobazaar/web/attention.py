"""What needs a staff member's attention now, per market they may see: held changes, open
mismatches, submissions and notes waiting for moderation, a silent feed, failed asset
jobs - each with a link into the studio page that deals with it (/home shows this)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from sqlmodel import func, select

from holobazaar import db
from holobazaar.accounts.models import Principal
from holobazaar.assets.models import StoredAsset
from holobazaar.db import session_scope
from holobazaar.moderation.service import queue
from holobazaar.web.services import services

STAFF = ("curator", "admin")


@dataclass
class Need:
    count: int
    what: str
    href: str
    severity: str = "warn"  # warn | bad


@dataclass
class MarketAttention:
    id: str
    name: str
    needs: list[Need] = field(default_factory=list)
    studio: str = ""


def _failed_assets(engine: Any, market: str) -> int:
    with session_scope(engine) as session:
        return session.exec(select(func.count()).select_from(StoredAsset).where(
            StoredAsset.market == market, StoredAsset.status == "failed")).one()


def _plural(n: int, one: str, many: str) -> str:
    """The words after the count (the page shows the count itself)."""
    return one if n == 1 else many


async def attention(request: Request, principal: Principal) -> list[MarketAttention]:
    content = services(request).scenes.content
    markets = sorted(content.markets.values() if content else [], key=lambda m: m.id)
    mine = [m for m in markets if principal.allows_any(STAFF, m.id)]
    if not mine:
        return []
    engine = services(request).engine
    reconciler = services(request).reconciler
    summaries = await reconciler.summaries([m.id for m in mine])
    out = []
    for market in mine:
        s = summaries[market.id]
        base = f"/studio/{market.id}"
        entry = MarketAttention(market.id, market.market.market.name, studio=base)
        if s["held_changes"]:
            entry.needs.append(Need(s["held_changes"], _plural(
                s["held_changes"], "held change waits", "held changes wait") + " for a curator",
                f"{base}/truth#held-h"))
        open_mismatches = sum(s["open_mismatches"].values()) - s["open_mismatches"]["stale"]
        if open_mismatches:
            entry.needs.append(Need(open_mismatches, _plural(
                open_mismatches, "open mismatch", "open mismatches") + " on displays",
                f"{base}/truth#mm-h", "bad"))
        if market.id in reconciler.stale:
            entry.needs.append(Need(s["displays_unverified"], _plural(
                s["displays_unverified"], "display shows", "displays show")
                + " prices as unverified: the inventory feed is silent",
                                    f"{base}/inventory#feed", "bad"))
        waiting = len(await db.call(engine, queue, engine, market.id))
        if waiting:
            entry.needs.append(Need(waiting, _plural(waiting, "submission or note waits",
                                                     "submissions and notes wait")
                                    + " for moderation", f"{base}/moderation"))
        failed = await db.call(engine, _failed_assets, engine, market.id)
        if failed:
            entry.needs.append(Need(failed, _plural(failed, "asset upload", "asset uploads")
                                    + " failed to process", base))
        out.append(entry)
    return out
