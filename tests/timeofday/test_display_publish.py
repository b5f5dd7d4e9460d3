"""Scheduled publishing of a display (#24): the draft pinned at scheduling is what the
scheduler writes at the clock's time, through the authoring path (a revision by
'schedule: <who>'), even after a later edit, which is told that the publish will replace it;
a cancelled schedule never fires; past times, stale etags and other markets' curators are
refused."""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from holobazaar.accounts import service as accounts
from holobazaar.scenes.clock import ManualClock

from support.content import copy_content
from support.live import LiveServer, start_server

MARKET, DISPLAY = "greenhaven", "korenbloem-bakery"
BASE = f"/api/v1/markets/{MARKET}/displays/{DISPLAY}"
START = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[tuple[LiveServer, ManualClock]]:
    tmp = tmp_path_factory.mktemp("display-publish")
    clock = ManualClock(START)
    live = start_server(tmp, clock=clock, content_dir=copy_content(tmp / "content"))
    yield live, clock
    live.stop()


def move(live: LiveServer, clock: ManualClock, when: datetime) -> float:
    return live.set_clock(clock, when)


def titled(doc: dict, title: str) -> dict:
    draft = copy.deepcopy(doc)
    draft["display"]["title"] = title
    return draft


def wait_for(check, what: str, seconds: float = 6.0):
    deadline = time.monotonic() + seconds
    while not (found := check()):
        assert time.monotonic() < deadline, what
        time.sleep(0.05)
    return found


def test_the_pinned_draft_publishes_at_its_time_even_after_an_edit(server):
    live, clock = server
    headers = live.write_headers
    with live.client() as http:
        source = http.get(f"{BASE}/source", headers=headers)
        doc, etag = source.json(), source.headers["ETag"]
        draft = titled(doc, "Winter bread (scheduled)")
        body = {"at": "2026-11-21T09:00", "document": draft}  # 08:00Z
        assert http.post(f"{BASE}/schedule", headers=headers, json=body).status_code == 428
        past = http.post(f"{BASE}/schedule", headers={**headers, "If-Match": etag},
                         json={**body, "at": "2026-11-20T08:30"})  # 07:30Z: past
        assert past.status_code == 422 and "in the past" in past.text
        bad = titled(doc, "x")
        bad["display"]["nodes"] = "nope"
        invalid = http.post(f"{BASE}/schedule", headers={**headers, "If-Match": etag},
                            json={**body, "document": bad})
        assert invalid.status_code == 422 and invalid.json()["detail"]["errors"]
        made = http.post(f"{BASE}/schedule", headers={**headers, "If-Match": etag}, json=body)
        assert made.status_code == 201, made.text
        assert made.json()["at"] == "2026-11-21T08:00:00+00:00"
        assert made.json()["newer_version"] is False
        stale = http.post(f"{BASE}/schedule", headers={**headers, "If-Match": '"old"'},
                          json=body)
        assert stale.status_code == 412
        # A later edit: it is told that the scheduled publish will replace it.
        edit = http.put(f"{BASE}/source", headers={**headers, "If-Match": etag},
                        json=titled(doc, "Edited after scheduling"))
        assert edit.status_code == 200, edit.text
        assert [s["id"] for s in edit.json()["scheduled"]] == [made.json()["id"]]
        assert "cancel this schedule" in edit.json()["scheduled"][0]["message"]
        listed = http.get(f"{BASE}/schedule", headers=headers).json()
        assert listed[0]["newer_version"] is True and listed[0]["state"] == "pending"
        move(live, clock, datetime(2026, 11, 21, 8, 0, 1, tzinfo=UTC))
        wait_for(lambda: http.get(f"{BASE}/source", headers=headers).json()["display"]
                 ["title"] == "Winter bread (scheduled)", "the scheduled draft not published")
        done = wait_for(lambda: [s for s in http.get(f"{BASE}/schedule", headers=headers)
                                 .json() if s["state"] == "done"], "not marked done")
        assert "edited after scheduling" in done[0]["result"]
        newest = http.get(f"{BASE}/revisions", headers=headers).json()[0]
        assert newest["actor"].startswith("schedule: ")
        assert newest["action"] == f"scheduled publish {made.json()['id']}"


def test_a_cancelled_schedule_never_fires_and_other_markets_are_refused(server):
    live, clock = server
    headers = live.write_headers
    token, _ = accounts.create_token(live.app.state.services.engine,  # type: ignore[attr-defined]
                                     "other curator", ["curator"], ["elsewhere"], None)
    other = {"Authorization": f"Bearer {token}"}
    with live.client() as http:
        source = http.get(f"{BASE}/source", headers=headers)
        doc, etag = source.json(), source.headers["ETag"]
        body = {"at": "2026-11-22T09:00", "document": titled(doc, "Never published")}
        assert http.post(f"{BASE}/schedule", headers={**other, "If-Match": etag},
                         json=body).status_code == 403
        assert http.get(f"{BASE}/schedule", headers=other).status_code == 403
        made = http.post(f"{BASE}/schedule", headers={**headers, "If-Match": etag}, json=body)
        assert made.status_code == 201, made.text
        sid = made.json()["id"]
        restored = http.post(f"{BASE}/revisions/1/restore", headers={**headers,
                                                                    "If-Match": etag})
        assert restored.status_code == 200, restored.text  # an edit too: it is told
        assert [s["id"] for s in restored.json()["scheduled"]] == [sid]
        assert http.delete(f"{BASE}/schedule/{sid}", headers=other).status_code == 403
        cancelled = http.delete(f"{BASE}/schedule/{sid}", headers=headers)
        assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
        assert http.delete(f"{BASE}/schedule/{sid}", headers=headers).status_code == 409
        move(live, clock, datetime(2026, 11, 22, 8, 0, 1, tzinfo=UTC))
        time.sleep(2.5)  # past the scheduler's re-read of pending rows
        assert http.get(f"{BASE}/source", headers=headers).json()["display"]["title"] \
            != "Never published"


def test_a_publish_left_undone_by_a_stopped_node_is_finished_when_one_goes_on_duty(tmp_path):
    """A node SIGKILLed after claiming the edge and the row (state 'publishing') but before
    writing: the next node on duty puts the row back and publishes it, once."""
    from sqlalchemy import text

    from holobazaar.db import session_scope

    content = copy_content(tmp_path / "content")
    first = start_server(tmp_path, clock=ManualClock(START), content_dir=content)
    try:
        headers = first.write_headers
        with first.client() as http:
            source = http.get(f"{BASE}/source", headers=headers)
            made = http.post(f"{BASE}/schedule", headers={
                **headers, "If-Match": source.headers["ETag"]}, json={
                "at": "2026-11-21T09:00", "document": titled(source.json(), "Left undone")})
            assert made.status_code == 201, made.text
        engine = first.app.state.services.engine  # type: ignore[attr-defined]
    finally:
        first.stop()
    with session_scope(engine) as session:  # what the stopped node left behind
        session.execute(text("UPDATE scheduled_display_publish SET state = 'publishing'"))
        session.execute(text(
            "INSERT INTO schedule_fire (market, edge_at, fired_at, node, reason, skipped) "
            "VALUES (:m, :at, :at, 'stopped node', 'edge', 0)"),
            {"m": MARKET, "at": datetime(2026, 11, 21, 8, 0, tzinfo=UTC)})
    second = start_server(tmp_path, clock=ManualClock(datetime(2026, 11, 21, 9, 0,
                                                               tzinfo=UTC)),
                          content_dir=content)
    second._admin_token = first.write_headers["Authorization"].split()[1]  # same database
    try:
        with second.client() as http:
            rows = wait_for(lambda: [r for r in http.get(
                f"{BASE}/schedule", headers=second.write_headers).json()
                if r["state"] == "done"], "the row left publishing was never finished")
            assert len(rows) == 1 and "revision" in rows[0]["result"]
            title = http.get(f"{BASE}/source", headers=second.write_headers).json()
            assert title["display"]["title"] == "Left undone"
            revisions = http.get(f"{BASE}/revisions", headers=second.write_headers).json()
            assert sum(r["action"].startswith("scheduled publish") for r in revisions) == 1
    finally:
        second.stop()
