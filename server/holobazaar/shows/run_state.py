"""Show runner state in the database (table `show_run`, migration 0006): written after
every change, read on start. A restart cannot resume timers that were pending, so a show
that was running or paused comes back standing by the cue it had standing by; a stopped
show stays stopped. (The scale-out work will share this state between nodes.)"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Column, DateTime, Text
from sqlalchemy.engine import Engine
from sqlmodel import Field as SQLField
from sqlmodel import Session, SQLModel, select

from holobazaar.db import session_scope


class ShowRun(SQLModel, table=True):
    __tablename__ = "show_run"

    market: str = SQLField(primary_key=True, max_length=64)
    show: str = SQLField(primary_key=True, max_length=64)
    status: str = SQLField(max_length=16)
    standby: str | None = SQLField(default=None, max_length=16)
    serial: int = 0
    started_at: float | None = None
    paused_at: float | None = None
    fired: str = SQLField(sa_column=Column(Text, nullable=False))  # JSON list of cues
    updated_at: datetime = SQLField(sa_column=Column(DateTime(timezone=True), nullable=False))


@dataclass(frozen=True)
class RunRecord:
    market: str
    show: str
    status: str
    standby: str | None
    serial: int
    started_at: float | None
    paused_at: float | None
    fired: list[dict]


def save_runs(engine: Engine, records: list[RunRecord]) -> None:
    now = datetime.now(UTC)
    with session_scope(engine) as session:
        for r in records:
            row = session.get(ShowRun, (r.market, r.show)) or ShowRun(market=r.market,
                                                                     show=r.show, fired="[]",
                                                                     status=r.status,
                                                                     updated_at=now)
            row.status, row.standby, row.serial = r.status, r.standby, r.serial
            row.started_at, row.paused_at = r.started_at, r.paused_at
            row.fired = json.dumps(r.fired, separators=(",", ":"))
            row.updated_at = now
            session.add(row)


def load_runs(engine: Engine) -> list[RunRecord]:
    with Session(engine) as session:
        rows = session.exec(select(ShowRun)).all()
    return [RunRecord(r.market, r.show, r.status, r.standby, r.serial, r.started_at,
                      r.paused_at, json.loads(r.fired)) for r in rows]
