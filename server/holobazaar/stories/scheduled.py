"""Scheduled publishing: a curator schedules a story or recipe that is in review to be
published at a time (or a published one to be unpublished). What publishes is exactly the
revision that was in review when it was scheduled: if the document was edited since, the
reviewed revision's text is published (the later edit stays in the revisions, to restore
or to schedule in turn), never the newer draft.

The schedules are rows of `scheduled_publish`; the scenes scheduler fires them (this
module's `ScheduledPublishing` is one of its edge sources), once in a cluster under its
lease, each row moving from `pending` to `done` or `failed` exactly once."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Column, DateTime
from sqlalchemy.engine import Engine
from sqlmodel import Field, SQLModel, col, select

from holobazaar import db
from holobazaar.audit import service as audit
from holobazaar.db import session_scope
from holobazaar.scenes.clock import as_utc
from holobazaar.scenes.loader import MarketContent
from holobazaar.stories import service
from holobazaar.stories.models import ContentRevision
from holobazaar.stories.schema import parse_document

log = logging.getLogger(__name__)

ACTIONS = ("publish", "unpublish")
REFRESH_SECONDS = 2.0  # how often the scheduler's copy of pending rows is re-read


class ScheduledPublish(SQLModel, table=True):
    __tablename__ = "scheduled_publish"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16)
    slug: str = Field(max_length=100, index=True)
    market: str = Field(max_length=64, index=True)
    action: str = Field(max_length=16)  # publish, unpublish
    at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    revision: int  # publish: the reviewed revision that will be published
    actor: str = Field(max_length=120)
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    state: str = Field(max_length=16, index=True)  # pending, done, failed, cancelled
    result: str = Field(default="", max_length=300)

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "slug": self.slug, "action": self.action,
                "at": as_utc(self.at).isoformat(), "revision": self.revision,
                "actor": self.actor, "state": self.state, "result": self.result}


def schedule(engine: Engine, kind: str, slug: str, market: str, action: str, at: datetime,
             actor: str, now: datetime) -> ScheduledPublish:
    """Schedule `action` at `at` (replacing a pending one of the same action). Publish:
    the document must be in review, and its current revision is what will publish."""
    at = as_utc(at)
    if action not in ACTIONS:
        raise service.Conflict(f"action must be one of {', '.join(ACTIONS)}")
    if at <= now:
        raise PastTime(f"at: {at.isoformat()} is in the past (the server's time is "
                       f"{now.replace(microsecond=0).isoformat()}): choose a later time")
    current = service.get(engine, kind, slug, market)
    if action == "publish" and current.status != "review":
        raise service.Conflict(f"{kind} {slug!r} is {current.status}: only a document in "
                               "review can be scheduled to publish (send it for review "
                               "first; the reviewed revision is what publishes)")
    if action == "unpublish" and current.status not in ("published", "review"):
        raise service.Conflict(f"{kind} {slug!r} is {current.status}: nothing to unpublish")
    with session_scope(engine) as session:
        for old in session.exec(select(ScheduledPublish).where(
                ScheduledPublish.kind == kind, ScheduledPublish.slug == slug,
                ScheduledPublish.action == action, ScheduledPublish.state == "pending")):
            old.state, old.result = "cancelled", "replaced by a new schedule"
            session.add(old)
        row = ScheduledPublish(kind=kind, slug=slug, market=market, action=action, at=at,
                               revision=current.revision, actor=actor[:120], created_at=now,
                               state="pending")
        session.add(row)
        audit.append(session, actor, f"{kind}.schedule_{action}", market,
                     {"slug": slug, "revision": current.revision, "at": at.isoformat()})
        session.flush()
        session.expunge(row)
        return row


class PastTime(ValueError):
    pass


def list_for(engine: Engine, kind: str, slug: str, market: str) -> list[ScheduledPublish]:
    service.get(engine, kind, slug, market)
    with session_scope(engine) as session:
        rows = list(session.exec(select(ScheduledPublish).where(
            ScheduledPublish.kind == kind, ScheduledPublish.slug == slug)
            .order_by(col(ScheduledPublish.id))))
        for row in rows:
            session.expunge(row)
        return rows


def for_market(engine: Engine, market: str, states: tuple[str, ...] = ("pending",)
               ) -> list[ScheduledPublish]:
    """The market's schedules in these states, soonest first (the studio's schedule page)."""
    with session_scope(engine) as session:
        rows = list(session.exec(select(ScheduledPublish).where(
            ScheduledPublish.market == market, col(ScheduledPublish.state).in_(states))
            .order_by(col(ScheduledPublish.at), col(ScheduledPublish.id))))
        for row in rows:
            session.expunge(row)
        return rows


def cancel(engine: Engine, kind: str, slug: str, market: str, schedule_id: int,
           actor: str) -> ScheduledPublish:
    with session_scope(engine) as session:
        row = session.get(ScheduledPublish, schedule_id)
        if row is None or (row.kind, row.slug, row.market) != (kind, slug, market):
            raise service.NotFound(f"{kind} {slug!r} has no schedule {schedule_id}")
        if row.state != "pending":
            raise service.Conflict(f"schedule {schedule_id} is {row.state} already")
        row.state, row.result = "cancelled", f"cancelled by {actor}"[:300]
        session.add(row)
        session.flush()
        session.expunge(row)
        return row


def reschedule_notice(engine: Engine, kind: str, slug: str,
                      revision: int) -> list[dict[str, Any]]:
    """After an edit: the pending publishes that will publish an older (the reviewed)
    revision, not this one, each with a question for the editor."""
    with session_scope(engine) as session:
        rows = list(session.exec(select(ScheduledPublish).where(
            ScheduledPublish.kind == kind, ScheduledPublish.slug == slug,
            ScheduledPublish.action == "publish", ScheduledPublish.state == "pending",
            ScheduledPublish.revision != revision)))
        return [{**row.as_json(), "message": (
            f"publishing at {as_utc(row.at).isoformat()} will publish the reviewed "
            f"revision {row.revision}, not this edit (revision {revision}): to publish this "
            "one instead, send it for review and schedule again")} for row in rows]


def pending(engine: Engine) -> list[ScheduledPublish]:
    with session_scope(engine) as session:
        rows = list(session.exec(select(ScheduledPublish).where(
            ScheduledPublish.state == "pending")))
        for row in rows:
            session.expunge(row)
        return rows


def apply(engine: Engine, row: ScheduledPublish) -> tuple[str, str]:
    """Carry out one due schedule: ('done' | 'failed', what happened)."""
    actor = f"schedule:{row.actor}"[:120]
    try:
        current = service.get(engine, row.kind, row.slug, row.market)
        if row.action == "unpublish":
            service.transition(engine, row.kind, row.slug, row.market, "archived", actor)
            return "done", "archived"
        if current.status != "review":
            return "failed", f"the {row.kind} is {current.status}, no longer in review"
        if current.revision == row.revision:
            service.transition(engine, row.kind, row.slug, row.market, "published", actor)
            return "done", f"published revision {row.revision}"
        with session_scope(engine) as session:
            reviewed = session.exec(select(ContentRevision).where(
                ContentRevision.kind == row.kind, ContentRevision.slug == row.slug,
                ContentRevision.number == row.revision)).first()
            snapshot = dict(reviewed.snapshot) if reviewed is not None else None
        if snapshot is None:
            return "failed", f"revision {row.revision} is gone"
        doc = parse_document({**snapshot, "status": "published"})
        saved = service.save(engine, doc, actor, action=f"published:{row.revision}",
                             origin=current.origin)
        with session_scope(engine) as session:
            audit.append(session, actor, f"{row.kind}.published", row.market,
                         {"slug": row.slug, "revision": saved.revision,
                          "reviewed": row.revision})
        return "done", (f"published the reviewed revision {row.revision} as revision "
                        f"{saved.revision} (revision {current.revision}, edited after the "
                        "review, was not published)")
    except (service.NotFound, service.Conflict, ValueError) as exc:
        return "failed", str(exc)[:300]


def finish(engine: Engine, row_id: int, state: str, result: str) -> bool:
    """Mark a pending row done/failed; False when it was no longer pending (once only)."""
    with session_scope(engine) as session:
        row = session.get(ScheduledPublish, row_id)
        if row is None or row.state != "pending":
            return False
        row.state, row.result = state, result[:300]
        session.add(row)
        return True


class ScheduledPublishing:
    """The scheduler's edge source for scheduled publishing (docs/stories.md)."""

    name = "scheduled-publishing"

    def __init__(self, engine: Engine,
                 published: Callable[[str], Awaitable[None]]) -> None:
        self.engine = engine
        self.published = published  # market -> reload the displays' stories, recompose
        self.rows: list[ScheduledPublish] = []
        self._read_at = float("-inf")

    async def refresh(self) -> None:
        if time.monotonic() - self._read_at >= REFRESH_SECONDS:
            self.rows = await db.call(self.engine, pending, self.engine)
            self._read_at = time.monotonic()

    def next_edge(self, market: MarketContent, after: datetime) -> datetime | None:
        return min((as_utc(r.at) for r in self.rows
                    if r.market == market.id and as_utc(r.at) > after), default=None)

    async def recover(self, markets: list[MarketContent], now: datetime) -> None:
        """On going on duty: every pending row already due is applied now (a node that
        stopped after claiming its edge never applied it)."""
        self.rows = await db.call(self.engine, pending, self.engine)
        self._read_at = time.monotonic()
        for market in markets:
            if any(r.market == market.id and as_utc(r.at) <= now for r in self.rows):
                await self.fire(market, now, now)

    async def fire(self, market: MarketContent, edge: datetime, now: datetime) -> None:
        self.rows = await db.call(self.engine, pending, self.engine)
        self._read_at = time.monotonic()
        changed = False
        for row in sorted(self.rows, key=lambda r: (as_utc(r.at), r.id or 0)):
            if row.market != market.id or as_utc(row.at) > edge:
                continue
            state, result = await db.call(self.engine, apply, self.engine, row)
            assert row.id is not None
            if await db.call(self.engine, finish, self.engine, row.id, state, result):
                changed = changed or state == "done"
                (log.info if state == "done" else log.warning)(
                    "scheduled %s of %s %s: %s", row.action, row.kind, row.slug, result)
        self.rows = [r for r in self.rows if r.market != market.id or as_utc(r.at) > edge]
        if changed:
            await self.published(market.id)
