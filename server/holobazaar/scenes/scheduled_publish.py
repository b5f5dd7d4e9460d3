"""Scheduled publishing of a display (issue #24): a curator schedules a draft of a
display's scene document to be published at a time. The document is pinned as it was
scheduled (with the etag of the file it was based on); at the time exactly that document is
written through the authoring write path (validated, checked by the loader, recorded as a
revision with actor 'schedule: <who>'), never whatever the file holds by then. A later edit
of the display does not change what publishes: the schedule reports that a newer version
exists (the PUT of the edit answers with it, GET .../schedule says so) so the curator can
cancel and schedule again.

The rows are an edge source of the scenes scheduler (like stories.scheduled), fired once in
a cluster: each row is claimed pending -> publishing before the write, then done or failed."""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, update
from sqlmodel import Field, SQLModel, col, select

from holobazaar import db
from holobazaar.db import session_scope
from holobazaar.scenes import authoring
from holobazaar.scenes.clock import as_utc
from holobazaar.scenes.loader import MarketContent
from holobazaar.scenes.models_db import DisplayRevision
from holobazaar.scenes.service import SceneService

log = logging.getLogger(__name__)

REFRESH_SECONDS = 2.0  # how often the scheduler's copy of pending rows is re-read


class ScheduledDisplayPublish(SQLModel, table=True):
    __tablename__ = "scheduled_display_publish"

    id: int | None = Field(default=None, primary_key=True)
    market: str = Field(max_length=64, index=True)
    display: str = Field(max_length=64)
    at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    base_etag: str = Field(max_length=80)  # the file the document was drafted from
    document: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    actor: str = Field(max_length=120)
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    state: str = Field(max_length=16, index=True)  # pending, publishing, done, failed, cancelled
    result: str = Field(default="", max_length=300)

    def as_json(self, current_etag: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id, "kind": "display", "display": self.display, "action": "publish",
            "at": as_utc(self.at).isoformat(), "base_etag": self.base_etag,
            "title": str(self.document.get("display", {}).get("title", "")),
            "actor": self.actor, "state": self.state, "result": self.result}
        if current_etag is not None and self.state == "pending":
            out["newer_version"] = current_etag != self.base_etag
            if out["newer_version"]:
                out["message"] = newer_message(self)
        return out


def newer_message(row: ScheduledDisplayPublish) -> str:
    return (f"the display was edited after this publish was scheduled: at "
            f"{as_utc(row.at).isoformat()} the document scheduled by {row.actor} replaces "
            "the newer version; to publish the newer one instead, cancel this schedule and "
            "schedule again")


class PastTime(ValueError):
    pass


def schedule(scenes: SceneService, market: str, display: str, doc: Any,
             if_match: str | None, at: datetime, actor: str,
             now: datetime) -> ScheduledDisplayPublish:
    """Pin `doc` (validated as a save validates it) to publish at `at`. If-Match: the etag
    of the source the draft was made from (428 without it, 412 when stale)."""
    at = as_utc(at)
    if not if_match:
        raise authoring.AuthoringError(428, "If-Match is required (the etag from GET "
                                       ".../source that the draft is based on)")
    current, etag = authoring.read_source(scenes, market, display)
    if if_match.strip() != etag:
        raise authoring.AuthoringError(412, {"message": "the display changed since you "
                                             "loaded it", "current": current, "etag": etag})
    if at <= now:
        raise PastTime(f"at: {at.isoformat()} is in the past (the server's time is "
                       f"{now.replace(microsecond=0).isoformat()}): choose a later time")
    problems = authoring.validate_document(doc, display)
    if problems:
        raise authoring.AuthoringError(422, {"message": "invalid display", "errors": problems})
    authoring.check_draft(scenes, market, display, doc)
    with session_scope(scenes.engine) as session:
        row = ScheduledDisplayPublish(market=market, display=display, at=at, base_etag=etag,
                                      document=doc, actor=actor[:120], created_at=now,
                                      state="pending")
        session.add(row)
        session.flush()
        session.expunge(row)
        return row


def rows_for(scenes: SceneService, market: str, display: str | None = None,
             states: tuple[str, ...] = ()) -> list[ScheduledDisplayPublish]:
    with session_scope(scenes.engine) as session:
        query = select(ScheduledDisplayPublish).where(ScheduledDisplayPublish.market == market)
        if display is not None:
            query = query.where(ScheduledDisplayPublish.display == display)
        if states:
            query = query.where(col(ScheduledDisplayPublish.state).in_(states))
        rows = list(session.exec(query.order_by(col(ScheduledDisplayPublish.at),
                                                col(ScheduledDisplayPublish.id))))
        for row in rows:
            session.expunge(row)
        return rows


def listing(scenes: SceneService, market: str, display: str | None = None,
            states: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """The schedules as JSON, each pending one saying whether the display has a newer
    version than the one its document was drafted from."""
    etags: dict[str, str | None] = {}
    out = []
    for row in rows_for(scenes, market, display, states):
        if row.display not in etags:
            try:
                etags[row.display] = authoring.read_source(scenes, market, row.display)[1]
            except authoring.AuthoringError:
                etags[row.display] = None
        out.append(row.as_json(etags[row.display]))
    return out


def cancel(scenes: SceneService, market: str, display: str, schedule_id: int,
           actor: str) -> ScheduledDisplayPublish:
    with session_scope(scenes.engine) as session:
        row = session.get(ScheduledDisplayPublish, schedule_id)
        if row is None or (row.market, row.display) != (market, display):
            raise authoring.AuthoringError(404, f"display {display!r} has no schedule "
                                           f"{schedule_id}")
        if row.state != "pending":
            raise authoring.AuthoringError(409, f"schedule {schedule_id} is {row.state} "
                                           "already")
        row.state, row.result = "cancelled", f"cancelled by {actor}"[:300]
        session.add(row)
        session.flush()
        session.expunge(row)
        return row


def edit_notice(scenes: SceneService, market: str, display: str) -> list[dict[str, Any]]:
    """After an edit of the display: its pending publishes, which will replace this edit."""
    rows = rows_for(scenes, market, display, ("pending",))
    return [{**row.as_json(), "message": newer_message(row)} for row in rows]


def _claim(scenes: SceneService, row_id: int) -> bool:
    """pending -> publishing, once in a cluster (False: taken or cancelled meanwhile)."""
    with session_scope(scenes.engine) as session:
        claimed = session.exec(update(ScheduledDisplayPublish).where(
            col(ScheduledDisplayPublish.id) == row_id,
            col(ScheduledDisplayPublish.state) == "pending").values(state="publishing"))
        return claimed.rowcount == 1


def _unfinished(scenes: SceneService) -> list[tuple[ScheduledDisplayPublish, bool]]:
    """Rows a stopped node left 'publishing', each with whether its revision was written
    (the write records the revision with the action `scheduled publish <id>`)."""
    with session_scope(scenes.engine) as session:
        rows = list(session.exec(select(ScheduledDisplayPublish).where(
            ScheduledDisplayPublish.state == "publishing")))
        out = []
        for row in rows:
            written = session.exec(select(DisplayRevision.id).where(
                DisplayRevision.market == row.market, DisplayRevision.display == row.display,
                DisplayRevision.action == _action(row))).first() is not None
            session.expunge(row)
            out.append((row, written))
        return out


def _release(scenes: SceneService, row_id: int) -> None:
    """publishing -> pending: a stopped node claimed the row but wrote nothing."""
    with session_scope(scenes.engine) as session:
        session.exec(update(ScheduledDisplayPublish).where(
            col(ScheduledDisplayPublish.id) == row_id,
            col(ScheduledDisplayPublish.state) == "publishing").values(state="pending"))


def _action(row: ScheduledDisplayPublish) -> str:
    return f"scheduled publish {row.id}"


def _finish(scenes: SceneService, row_id: int, state: str, result: str) -> None:
    with session_scope(scenes.engine) as session:
        row = session.get(ScheduledDisplayPublish, row_id)
        if row is not None:
            row.state, row.result = state, result[:300]
            session.add(row)


async def apply(scenes: SceneService, row: ScheduledDisplayPublish) -> tuple[str, str]:
    """Write the pinned document: ('done' | 'failed', what happened)."""
    try:
        path = authoring.display_path(scenes, row.market, row.display)
        if not path.is_file():
            return "failed", f"the display {row.display!r} is gone"
        raw = path.read_bytes()
        edited = authoring.etag_of(raw) != row.base_etag
        await authoring.write_document(scenes, row.market, row.display, path, raw,
                                       row.document, f"schedule: {row.actor}"[:120],
                                       _action(row))
    except authoring.AuthoringError as exc:
        return "failed", str(exc)[:300]
    number = authoring.revisions(scenes, row.market, row.display)[0].number
    if edited:
        return "done", (f"published the scheduled document as revision {number}; the "
                        "display had been edited after scheduling: that newer version was "
                        "replaced (it stays in the revisions)")
    return "done", f"published the scheduled document as revision {number}"


class DisplayPublishing:
    """The scheduler's edge source for scheduled display publishes (docs/scene-format.md)."""

    name = "display-publishing"

    def __init__(self, scenes: SceneService) -> None:
        self.scenes = scenes
        self.rows: list[ScheduledDisplayPublish] = []
        self._read_at = float("-inf")

    def _pending(self) -> list[ScheduledDisplayPublish]:
        with session_scope(self.scenes.engine) as session:
            rows = list(session.exec(select(ScheduledDisplayPublish).where(
                ScheduledDisplayPublish.state == "pending")))
            for row in rows:
                session.expunge(row)
            return rows

    async def refresh(self) -> None:
        if time.monotonic() - self._read_at >= REFRESH_SECONDS:
            self.rows = await db.call(self.scenes.engine, self._pending)
            self._read_at = time.monotonic()

    def next_edge(self, market: MarketContent, after: datetime) -> datetime | None:
        return min((as_utc(r.at) for r in self.rows
                    if r.market == market.id and as_utc(r.at) > after), default=None)

    async def recover(self, markets: list[MarketContent], now: datetime) -> None:
        """On going on duty: a row a stopped node left 'publishing' is done when its
        revision was written, else pending again; then every pending row already due
        publishes now (its edge may have been claimed by the node that stopped)."""
        for row, written in await db.call(self.scenes.engine, _unfinished, self.scenes):
            assert row.id is not None
            if written:
                await db.call(self.scenes.engine, _finish, self.scenes, row.id, "done",
                              "published (confirmed after the node publishing it "
                              "stopped)")
            else:
                log.warning("scheduled publish of display %s/%s: the node publishing it "
                            "stopped before writing; publishing it again",
                            row.market, row.display)
                await db.call(self.scenes.engine, _release, self.scenes, row.id)
        self.rows = await db.call(self.scenes.engine, self._pending)
        self._read_at = time.monotonic()
        for market in markets:
            if any(r.market == market.id and as_utc(r.at) <= now for r in self.rows):
                await self.fire(market, now, now)

    async def fire(self, market: MarketContent, edge: datetime, now: datetime) -> None:
        self.rows = await db.call(self.scenes.engine, self._pending)
        self._read_at = time.monotonic()
        for row in sorted(self.rows, key=lambda r: (as_utc(r.at), r.id or 0)):
            if row.market != market.id or as_utc(row.at) > edge:
                continue
            assert row.id is not None
            if not await db.call(self.scenes.engine, _claim, self.scenes, row.id):
                continue
            state, result = await apply(self.scenes, row)
            await db.call(self.scenes.engine, _finish, self.scenes, row.id, state, result)
            (log.info if state == "done" else log.warning)(
                "scheduled publish of display %s/%s: %s", row.market, row.display, result)
        self.rows = [r for r in self.rows if r.market != market.id or as_utc(r.at) > edge]
