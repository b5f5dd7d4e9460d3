"""The staff channel `market/<m>/truth`: what the truth and moderation pages show, in a
few numbers.

A small summary per market (held changes waiting, open mismatches, moderation items
waiting, and a signature of each list) is published through the hub, the one way into the
stream (in a cluster the broker carries it), and only when it changed. The studio's truth
and moderation pages subscribe to it (a curator's pass, accounts/preview_links.py) and
re-read their parts when a message arrives; visitors and other markets' staff are refused
the channel (accounts/stream.py, channels.PRIVATE_KINDS).

It reads the database once a second per market (three small queries and the moderation
queue) on one node of a cluster (a singleton duty, web/assembly.py): held changes, mismatches
and submissions are written from several places (feed batches, the sweep, decisions on
any node, the visitor form), and one cheap reader sees them all without a hook in each.
No personal data: counts and hashes of ids only.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlmodel import col, select

from holobazaar import db
from holobazaar.channels import truth_channel
from holobazaar.db import session_scope
from holobazaar.inventory.tables import HeldChange, Mismatch
from holobazaar.stream.hub import Hub

INTERVAL = 1.0
VERSION = 1


def _ids_signature(ids: Iterable[int | None]) -> str:
    return hashlib.sha256(",".join(str(i) for i in ids).encode()).hexdigest()[:16]


# The moderation domain's queue of a market and its signature, given by the assembly
# (inventory does not import moderation, which sits above stories and pulse).
ModerationQueue = Callable[[Any, str], Sequence[dict[str, Any]]]
QueueSignature = Callable[[Iterable[dict[str, Any]]], str]


class TruthFeed:
    """Publishes each market's summary on `market/<m>/truth` when it changes."""

    def __init__(self, engine: Any, hub: Hub, markets: Callable[[], Iterable[str]],
                 moderation_queue: ModerationQueue, queue_signature: QueueSignature,
                 interval: float = INTERVAL) -> None:
        self.engine, self.hub, self.markets, self.interval = engine, hub, markets, interval
        self.moderation_queue, self.queue_signature = moderation_queue, queue_signature
        self._last: dict[str, dict[str, Any]] = {}

    def summary(self, market: str) -> dict[str, Any]:
        """The channel's state for one market (blocking: run it in a thread)."""
        with session_scope(self.engine) as session:
            held = list(session.exec(select(HeldChange.id).where(
                HeldChange.market == market, col(HeldChange.decision).is_(None))
                .order_by(col(HeldChange.id))))
            mismatches = list(session.exec(select(Mismatch.id).where(
                Mismatch.market == market, col(Mismatch.resolved_at).is_(None))
                .order_by(col(Mismatch.id))))
        waiting = self.moderation_queue(self.engine, market)
        return {"v": VERSION, "market": market,
                "held": len(held), "held_sig": _ids_signature(held),
                "mismatches": len(mismatches), "mismatches_sig": _ids_signature(mismatches),
                "moderation": len(waiting), "moderation_sig": self.queue_signature(waiting)}

    async def publish(self) -> int:
        """One pass over the markets; how many summaries were published."""
        published = 0
        for market in self.markets():
            state = await db.call(self.engine, self.summary, market)
            if state == self._last.get(market):
                continue
            await self.hub.publish(truth_channel(market), state)
            self._last[market] = state
            published += 1
        return published

    async def run(self, stop: asyncio.Event) -> None:
        # A new leader publishes at once (its cache is empty; the hub drops an equal state).
        self._last.clear()
        while not stop.is_set():
            await self.publish()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval)
