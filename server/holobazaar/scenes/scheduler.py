"""The scheduler: at every edge of a market's time-of-day content (an opening or closing,
a display's schedule window starting or ending) it recomposes the market through the
scene service's normal publish path, so connected clients get an ordinary patch then.

It runs as a single-writer duty (one node of a cluster, under the cluster's lease; the
app wires it). Each firing is claimed in the `schedule_fire` table first (primary key:
market and edge instant), so an edge is applied at most once even if two nodes overlap
during a lease handover, and a node taking over (or a restart) starts from the last edge
fired: edges that passed meanwhile are applied once, late, on recovery. The time comes
from the injected clock and is re-read every `nap` seconds, so a step of the wall clock
(NTP) neither fires an edge twice (backwards: the edge is already claimed) nor skips one
silently (forwards: the passed edges are applied at once, counted in `skipped`)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import Column, DateTime, func
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, select

from holobazaar import db
from holobazaar.scenes import schedule
from holobazaar.scenes.clock import Clock, as_utc

if TYPE_CHECKING:
    from holobazaar.scenes.loader import MarketContent
    from holobazaar.scenes.service import SceneService

log = logging.getLogger(__name__)

# Edges further back than this are not replayed one by one: composing at "now" already
# shows what they led to.
LOOKBACK = timedelta(days=1)


class ScheduleFire(SQLModel, table=True):
    """One applied edge of a market's schedule (or `reason='start'`: the point from which
    the first scheduler of a market counts)."""

    __tablename__ = "schedule_fire"

    market: str = Field(max_length=64, primary_key=True)
    edge_at: datetime = Field(sa_column=Column(DateTime(timezone=True), primary_key=True))
    fired_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    node: str = Field(max_length=120)
    reason: str = Field(max_length=16)  # edge, recovery (applied late), start
    skipped: int = 0  # earlier edges folded into this one (down, or a clock step)


class EdgeSource(Protocol):
    """Another domain's timed events (e.g. shows that start by themselves), given to the
    scheduler at assembly: they fire under the same lease and the same once-only claim."""

    name: str

    def next_edge(self, market: MarketContent, after: datetime) -> datetime | None:
        """The first instant after `after` at which something of the market is due."""
        ...

    async def fire(self, market: MarketContent, edge: datetime, now: datetime) -> None:
        """`edge` (due, claimed once) is applied now; `now - edge` says how late."""
        ...

    # Optional: `async def recover(self, markets: list[MarketContent], now: datetime)`,
    # called when a node goes on duty: finish what a node that stopped between claiming
    # an edge and firing it left undone (its events are at or before the last mark).


@dataclass(frozen=True)
class Fired:
    market: str
    edge_at: datetime
    reason: str
    skipped: int


class Scheduler:
    def __init__(self, scenes: SceneService, engine: Engine, node: str,
                 clock: Clock | None = None, nap: float = 1.0,
                 sources: list[EdgeSource] | None = None) -> None:
        self.scenes, self.engine, self.node = scenes, engine, node
        self.sources: list[EdgeSource] = list(sources or [])
        self.clock = clock or scenes.clock
        self.nap = nap
        self.marks: dict[str, datetime] = {}  # market -> the last edge applied
        self.fired: list[Fired] = []  # by this node, newest last (bounded)
        self.started: datetime | None = None
        self._countdown: dict[str, tuple[MarketContent, bool]] = {}

    # ---- the duty ------------------------------------------------------------------

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Loop until cancelled (or `stop`): the singleton duty."""
        self.marks = await db.call(self.engine, self._load_marks)
        self.started = self.clock.now()  # edges before this fell due with nobody on duty
        await self.recover()
        while stop is None or not stop.is_set():
            wake = await self.tick()
            now = self.clock.now()
            await self.clock.wait(wake or now + timedelta(seconds=self.nap), self.nap)

    async def recover(self) -> None:
        """Going on duty: let each source finish what a stopped node left undone."""
        content = self.scenes.content
        markets = list(content.markets.values()) if content else []
        for source in self.sources:
            recover = getattr(source, "recover", None)
            if recover is None:
                continue
            try:
                await recover(markets, self.clock.now())
            except Exception:  # one source failing must not keep the others off duty
                log.exception("scheduler: recovering %s failed", source.name)

    async def tick(self) -> datetime | None:
        """Apply every edge that is due; return the next one (None: none known)."""
        content = self.scenes.content
        if content is None:
            return None
        for source in self.sources:  # sources that read their events from the database
            refresh = getattr(source, "refresh", None)
            if refresh is not None:
                await refresh()
        now = self.clock.now()
        upcoming: list[datetime] = []
        for market in list(content.markets.values()):
            if not self._timed(market, now):
                continue  # nothing in this market follows the time of day
            mark = self.marks.get(market.id)
            if mark is None:  # first timed now: count from when this node went on duty
                mark = self.marks[market.id] = min(now, self.started or now)
                await db.call(self.engine, self._claim, market.id, mark, now, "start", 0)
            edge = self.next_edge(market, max(mark, now - LOOKBACK))
            if edge is not None and edge <= now:
                await self._fire(market, edge, now)
                edge = self.next_edge(market, max(self.marks[market.id], now))
            if edge is not None:
                upcoming.append(edge)
        return min(upcoming, default=None)

    def _timed(self, market: MarketContent, now: datetime) -> bool:
        return market.market.hours is not None or any(
            d.schedule for d in market.displays.values()) or any(
            source.next_edge(market, now - LOOKBACK) is not None for source in self.sources)

    def next_edge(self, market: MarketContent, after: datetime) -> datetime | None:
        displays = list(market.displays.values())
        edges = [schedule.next_edge(market.market.hours, [d.schedule for d in displays],
                                    after, schedule.zone(market.market.market.timezone),
                                    self._counts_down(market))]
        edges += [source.next_edge(market, after) for source in self.sources]
        return min((edge for edge in edges if edge is not None), default=None)

    def _counts_down(self, market: MarketContent) -> bool:
        """Whether a template of the market shows minutes to an opening or closing (then
        each minute of the last hour before it is an edge); cached per loaded content."""
        cached = self._countdown.get(market.id)
        if cached is None or cached[0] is not market:
            texts = (d.model_dump_json() for d in market.displays.values())
            cached = self._countdown[market.id] = (market, schedule.uses_countdown(texts))
        return cached[1]

    async def _fire(self, market: MarketContent, edge: datetime, now: datetime) -> None:
        since, skipped = max(self.marks[market.id], now - LOOKBACK), 0
        while (following := self.next_edge(market, edge)) is not None and following <= now:
            edge, skipped = following, skipped + 1
        late = now - edge > timedelta(seconds=self.nap + 1) or (
            self.started is not None and edge < self.started)
        reason = "recovery" if late or skipped else "edge"
        claimed = await db.call(self.engine, self._claim, market.id, edge, now, reason, skipped)
        self.marks[market.id] = edge
        if not claimed:  # applied already (a clock step back, or another node)
            return
        if late or skipped:
            log.warning("scheduler: %s: applying the edge at %s late (%d earlier edges "
                        "folded into it)", market.id, edge.isoformat(), skipped)
        await self.scenes.refresh(market.id)
        for source in self.sources:  # each source's latest edge in (since, edge]
            due = None
            while (found := source.next_edge(market, due or since)) is not None \
                    and found <= edge:
                due = found
            if due is not None:
                try:
                    await source.fire(market, due, now)
                except Exception:  # one source failing must not stop the others
                    log.exception("scheduler: %s: %s failed at %s", market.id, source.name,
                                  due.isoformat())
        self.fired = [*self.fired[-99:], Fired(market.id, edge, reason, skipped)]

    # ---- the record ----------------------------------------------------------------

    def _claim(self, market: str, edge: datetime, now: datetime, reason: str,
               skipped: int) -> bool:
        row = ScheduleFire(market=market, edge_at=as_utc(edge), fired_at=as_utc(now),
                           node=self.node, reason=reason, skipped=skipped)
        with Session(self.engine) as session:
            session.add(row)
            try:
                session.commit()
            except IntegrityError:
                session.rollback()
                return False
        return True

    def _load_marks(self) -> dict[str, datetime]:
        with Session(self.engine) as session:
            rows = session.exec(select(ScheduleFire.market, func.max(ScheduleFire.edge_at))
                                .group_by(ScheduleFire.market)).all()
        return {market: as_utc(edge) for market, edge in rows if edge is not None}
