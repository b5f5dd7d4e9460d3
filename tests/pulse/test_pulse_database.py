"""Pulse storage on SQLite and PostgreSQL (a throwaway database per run): the migration
applies and reverts, minutes merge, k-anonymous reads, retention pruning, the day's salt."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine

from holobazaar import db
from holobazaar.pulse import database
from holobazaar.pulse.aggregator import MarketPulse

from support.databases import postgres_engine

T0 = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'pulse.db'}"
        db.upgrade(url)
        engine = db.make_engine(url)
        yield engine
        engine.dispose()
        return
    with postgres_engine("pulse") as engine:
        yield engine

def rows_for(devices: int, display: str = "a", kind: str = "love", at: datetime = T0):
    pulse = MarketPulse("m")
    for i in range(devices):
        pulse.add(at.timestamp() + 1, f"dev{i}", display, "z", kind)
    return pulse.closed_minutes(at.timestamp() + 120)


def test_minutes_merge_and_read_k_anonymously(engine: Engine) -> None:
    database.add_minutes(engine, "m", rows_for(3))
    database.add_minutes(engine, "m", rows_for(3, kind="wow"))  # the same minute again
    database.add_minutes(engine, "m", rows_for(2, display="b", at=T0 + timedelta(minutes=1)))
    shown = database.minutes(engine, "m", T0, T0 + timedelta(hours=1), k=5)
    assert {(r.scope, r.scope_id, r.minute) for r in shown} == {
        ("market", "m", T0), ("zone", "z", T0), ("display", "a", T0)}
    display = next(r for r in shown if r.scope == "display")
    assert (display.love, display.wow, display.devices) == (3, 3, 6)
    assert display.mood == round(100 * 5.25 / 11.25)
    assert display.minute.tzinfo is not None
    everything = database.minutes(engine, "m", T0, T0 + timedelta(hours=1), k=1)
    assert len(everything) == 6
    assert database.minutes(engine, "other", T0, T0 + timedelta(hours=1), k=1) == []


def test_events_pruned_after_retention_and_salt_rotates(engine: Engine) -> None:
    old, new = T0 - timedelta(hours=3), T0
    database.add_events(engine, [
        {"market": "m", "display": "a", "zone": "z", "kind": "love", "dwell": None,
         "device": "0" * 16, "at": old},
        {"market": "m", "display": "a", "zone": "z", "kind": "dwell", "dwell": 30,
         "device": "1" * 16, "at": new}])
    assert database.prune_events(engine, T0 - timedelta(hours=2)) == 1
    kept = database.events_since(engine, T0 - timedelta(days=1))
    assert [(e.kind, e.dwell) for e in kept] == [("dwell", 30)]
    first = database.day_salt(engine, "2026-11-21")
    assert database.day_salt(engine, "2026-11-21") == first and len(first) == 32
    second = database.day_salt(engine, "2026-11-22")
    assert second != first
    with engine.connect() as conn:  # yesterday's salt is gone: old hashes are unlinkable
        assert conn.execute(text("SELECT day FROM pulse_salt")).scalars().all() == [
            "2026-11-22"]


def test_migration_reverts(engine: Engine) -> None:
    url = engine.url.render_as_string(hide_password=False)
    command.downgrade(db.alembic_config(url), "0002")
    names = set(inspect(engine).get_table_names())
    assert not {"pulse_minute", "pulse_event", "pulse_feedback", "pulse_salt"} & names
    db.upgrade(url)
    assert {"pulse_minute", "pulse_event"} <= set(inspect(engine).get_table_names())
