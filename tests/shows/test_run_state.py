"""Runner state in the database: written after every change, taken up after a restart
(SQLite here; the migration and the store on PostgreSQL when a server is configured)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect

from holobazaar import db
from holobazaar.shows import run_state

from support.databases import throwaway_postgres
from support.live import start_server
from support.waiting import wait_for

BASE = "/api/v1/shows/greenhaven/harvest-collective"


def performer_headers(live, name: str) -> dict[str, str]:
    """A performer token (the restarted server shares the database, so each needs its own
    token name; live.write_headers would reuse one)."""
    from holobazaar.accounts import service

    token, _ = service.create_token(live.app.state.services.engine, name, ["performer"],
                                    ["greenhaven"], None, actor="tests")
    return {"Authorization": f"Bearer {token}"}


def wait_for_row(engine, predicate) -> run_state.RunRecord:
    """The show's stored run once it matches `predicate`."""
    def matching() -> run_state.RunRecord | None:
        rows = run_state.load_runs(engine)
        return rows[0] if rows and predicate(rows[0]) else None

    return wait_for(matching)


def test_runner_state_survives_a_restart(tmp_path: Path):
    first = start_server(tmp_path)
    try:
        with first.client() as http:
            body = http.post(f"{BASE}/go", headers=first.write_headers).json()
        standby_before = body["standby"]["id"]
        row = wait_for_row(first.app.state.services.engine, lambda r: r.standby == "6")
        assert row.status == "running" and [c["number"] for c in row.fired][:1] == ["1"]
    finally:
        first.stop()
    second = start_server(tmp_path, content_dir=first.content_dir)
    headers = performer_headers(second, "second")
    try:
        with second.client() as http:
            state = http.get(BASE, headers=headers).json()
            assert state["status"] == "ready"
            assert state["standby"]["number"] == "6"
            # A GO naming the pre-restart standby id is refused: it may have been fired.
            stale = http.post(f"{BASE}/go", json={"cue": standby_before},
                              headers=headers)
            assert stale.status_code == 409
            assert http.post(f"{BASE}/stop", headers=headers).status_code == 200
        wait_for_row(second.app.state.services.engine, lambda r: r.status == "stopped")
    finally:
        second.stop()
    third = start_server(tmp_path, content_dir=first.content_dir)
    headers = performer_headers(third, "third")
    try:
        with third.client() as http:
            assert http.get(BASE, headers=headers).json()["status"] == "stopped"
    finally:
        third.stop()


@pytest.mark.postgres
def test_migration_and_store_on_postgresql():
    with throwaway_postgres("shows") as target:
        db.upgrade(target)
        engine = db.make_engine(target)
        try:
            assert "show_run" in inspect(engine).get_table_names()
            record = run_state.RunRecord("greenhaven", "harvest-collective", "running", "6", 3,
                                     1.5e12, None, [{"id": "x", "number": "1"}])
            run_state.save_runs(engine, [record])
            run_state.save_runs(engine, [record.__class__(**{**record.__dict__,
                                                          "status": "stopped"})])
            assert run_state.load_runs(engine) == [record.__class__(
                **{**record.__dict__, "status": "stopped"})]
        finally:
            engine.dispose()
