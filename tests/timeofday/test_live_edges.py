"""A window edge reaches a connected client as a normal patch at the clock's instant, on
both Europe/Amsterdam DST days; the scheduler records each edge once (a clock step back
does not fire it again, one forward applies what was passed once); `?at=` previews."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, select

from holobazaar.channels import display_channel, market_channel, zone_channel
from holobazaar.scenes.clock import ManualClock
from holobazaar.scenes.scheduler import ScheduleFire
from timeofday.content import DISPLAY, MARKET, SHOW, SHOW_ZONE, schedule_content

from support.live import LiveServer, start_server
from support.streamclient import joined

CHANNEL = display_channel(MARKET, DISPLAY)
# Sunday hours are 10:00-16:00 local; before them the display shows its 'closed' variant,
# from 10:00 (in a breakfast window, 07:00-11:00) 'breakfast'. 10:00 local is 08:00Z on
# the spring-forward Sunday and 09:00Z on the fall-back one.
START = datetime(2026, 3, 29, 7, 59, 58, tzinfo=UTC)


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[tuple[LiveServer, ManualClock]]:
    tmp = tmp_path_factory.mktemp("schedule")
    clock = ManualClock(START)
    live = start_server(tmp, clock=clock, content_dir=schedule_content(tmp / "content"))
    yield live, clock
    live.stop()


def move(live: LiveServer, clock: ManualClock, when: datetime) -> float:
    return live.set_clock(clock, when)


def fires(live: LiveServer) -> list[ScheduleFire]:
    with Session(live.app.state.services.engine) as session:  # type: ignore[attr-defined]
        return list(session.exec(select(ScheduleFire).where(ScheduleFire.reason != "start")
                                 .order_by(ScheduleFire.edge_at)))


def variant(state: dict) -> str | None:
    return state["schedule"]["variant"]


@pytest.mark.parametrize("edge", [datetime(2026, 3, 29, 8, 0, tzinfo=UTC),
                                  datetime(2026, 10, 25, 9, 0, tzinfo=UTC)],
                         ids=["spring-forward", "fall-back"])
def test_a_window_edge_is_a_patch_at_that_instant(server, edge: datetime):
    live, clock = server
    reconciler = live.app.state.services.reconciler  # type: ignore[attr-defined]
    before = edge.replace(minute=59, hour=edge.hour - 1, second=59)

    async def scenario() -> None:
        move(live, clock, before)
        await asyncio.sleep(0.3)  # whatever the move itself brings, before subscribing
        client = await joined(live.ws_url, CHANNEL, market_channel(MARKET))
        try:
            assert variant(client.views[CHANNEL].state) == "closed"
            assert client.views[market_channel(MARKET)].state["market"]["open"] is False
            assert await client.quiet(0.3) == []  # nothing changes one second early
            live.call(reconciler.sweep, MARKET)  # it caches the state it expects
            offset = client.views[CHANNEL].offset
            moved = move(live, clock, edge)
            patch = await client.next("patch", timeout=1.0)
            latency = time.monotonic() - moved
            view = await client.wait_offset(CHANNEL, offset + 1, timeout=1.0)
            assert variant(view.state) == "breakfast"
            assert view.state["nodes"]["story"]["title"] == "Breakfast"
            assert view.state["hours"]["open"] is True
            assert latency < 1.0, latency
            assert patch["type"] == "patch" and not client.violations
            # The reconciler's sweep expects the new variant too (it does not "correct"
            # the display back to what it cached before the edge).
            corrections = live.call(reconciler.sweep, MARKET)
            assert variant(client.views[CHANNEL].state) == "breakfast", corrections
            assert [f for f in await client.quiet(0.3) if f.get("channel") == CHANNEL] == []
        finally:
            await client.close()

    asyncio.run(scenario())
    assert edge in {f.edge_at.replace(tzinfo=UTC) for f in fires(live)}


def test_a_clock_step_neither_fires_twice_nor_skips(server):
    live, clock = server
    # Tuesday, a second before 08:00 local (the opening); the templates count minutes to
    # it, so each minute before was an edge too (applied when the clock got here).
    base = datetime(2026, 10, 27, 6, 59, 59, tzinfo=UTC)
    move(live, clock, base)
    time.sleep(0.3)
    count = len(fires(live))
    move(live, clock, datetime(2026, 10, 27, 7, 0, tzinfo=UTC))  # 08:00: opens
    time.sleep(0.3)
    move(live, clock, base)  # an NTP step back over the edge
    time.sleep(0.3)
    move(live, clock, datetime(2026, 10, 27, 7, 0, 5, tzinfo=UTC))  # and forward again
    time.sleep(0.3)
    after = fires(live)[count:]
    assert [(f.edge_at.replace(tzinfo=UTC), f.reason) for f in after] == [
        (datetime(2026, 10, 27, 7, 0, tzinfo=UTC), "edge")]
    # A step forward over several edges (11:00 breakfast ends, 18:00 closes) applies the
    # last one once, late, and counts the one folded into it (the walk from edge to edge
    # jumps over countdown minutes: they only matter when they are now).
    move(live, clock, datetime(2026, 10, 27, 18, 0, tzinfo=UTC))
    time.sleep(0.3)
    last = fires(live)[-1]
    assert (last.edge_at.replace(tzinfo=UTC), last.reason) == (
        datetime(2026, 10, 27, 17, 0, tzinfo=UTC), "recovery")
    assert last.skipped == 1
    with live.client() as http:
        state = http.get(f"/api/v1/displays/{MARKET}/{DISPLAY}/state").json()["state"]
    assert variant(state) == "closed"


def test_preview_at_a_moment_and_the_market_page(server):
    live, clock = server
    move(live, clock, datetime(2026, 10, 27, 18, 0, tzinfo=UTC))  # Tuesday 19:00 local
    with live.client() as http:
        assert "Closed · opens Wed 08:00" in http.get(f"/m/{MARKET}").text
        move(live, clock, datetime(2026, 10, 28, 16, 40, tzinfo=UTC))
        assert "Open now · closes 18:00" in http.get(f"/m/{MARKET}").text
        url = f"/api/v1/displays/{MARKET}/{DISPLAY}/state"
        eve = http.get(url, params={"at": "2026-12-24T14:40"}).json()
        assert eve["epoch"] == "preview" and eve["at"] == "2026-12-24T14:40:00+01:00"
        assert eve["state"]["hours"] == {"open": True, "opens_at": None,
                                         "closes_at": "2026-12-24T15:00:00+01:00"}
        assert variant(eve["state"]) is None
        assert variant(http.get(url, params={"at": "2026-12-25T09:00"}).json()["state"]) \
            == "closed"
        assert variant(http.get(url, params={"at": "2026-12-26T07:30:00+01:00"})
                       .json()["state"]) == "breakfast"
        bad = http.get(url, params={"at": "tomorrow"})
        assert bad.status_code == 422 and "ISO 8601" in bad.text
        schema = http.get("/api/v1/schema/display-state").json()
        import jsonschema

        jsonschema.validate(eve["state"], schema)


def test_a_scheduled_show_starts_itself_and_a_performer_takes_over(server):
    live, clock = server
    api = f"/api/v1/shows/{MARKET}/{SHOW}"
    saturday = datetime(2026, 11, 7, 10, 0, tzinfo=UTC)  # 11:00 local
    move(live, clock, saturday - timedelta(seconds=1))
    with live.client() as http:
        state = http.get(api, headers=live.write_headers).json()
        assert state["next_start"] == {"at": "2026-11-07T11:00:00+01:00",
                                       "label": "Sat 07 Nov 11:00"}
        assert state["status"] != "running"

        async def scenario() -> dict:
            client = await joined(live.ws_url, zone_channel(MARKET, SHOW_ZONE))
            try:
                moved = move(live, clock, saturday)
                cue = await client.next("cue", timeout=2.0)
                assert time.monotonic() - moved < 1.0
                return cue
            finally:
                await client.close()

        cue = asyncio.run(scenario())
        assert cue["cue"]["show"] == SHOW and cue["cue"]["number"] == "1"
        assert http.get(api, headers=live.write_headers).json()["status"] == "running"
        # The performer takes over: hold, then stop, as after their own GO.
        held = http.post(f"{api}/pause", headers=live.write_headers)
        assert held.status_code == 200 and held.json()["status"] == "paused"
        assert http.post(f"{api}/stop", headers=live.write_headers).json()["status"] \
            == "stopped"
        page = http.get(f"/perform/{MARKET}/{SHOW}", headers=live.write_headers)
        # The next Saturday's start after this one (the console's line).
        assert http.get(api, headers=live.write_headers).json()["next_start"]["label"] \
            == "Sat 14 Nov 11:00", page.status_code
    # A start missed by more than its catch_up (the server was "down" past it) is skipped.
    move(live, clock, datetime(2026, 11, 14, 10, 5, tzinfo=UTC))
    time.sleep(0.3)
    starts = live.app.state.services.show_starts.log  # type: ignore[attr-defined]
    # (The clock's earlier jumps passed Saturday 24 October's start: skipped likewise.)
    assert [(s["at"], s["outcome"]) for s in starts if s["at"] > "2026-11"] == [
        ("2026-11-07T10:00:00+00:00", "started"),
        ("2026-11-14T10:00:00+00:00", "skipped: missed by more than catch_up")]


def test_scheduled_publishing_publishes_the_reviewed_revision(server):
    live, clock = server
    headers = live.write_headers
    base = f"/api/v1/markets/{MARKET}/stories/harvest-opens"
    move(live, clock, datetime(2026, 11, 20, 8, 0, tzinfo=UTC))
    with live.client() as http:
        created = http.post(f"/api/v1/markets/{MARKET}/stories", headers=headers, json={
            "kind": "story", "slug": "harvest-opens", "title": "The harvest opens",
            "body": "Reviewed text.", "producers": ["zonneveld"]})
        assert created.status_code == 201, created.text
        past = http.post(f"{base}/schedule", headers=headers,
                         json={"at": "2026-11-20T08:00"})  # 08:00 local: 07:00Z, past
        assert past.status_code == 422 and "in the past" in past.text
        refused = http.post(f"{base}/schedule", headers=headers,
                            json={"at": "2026-11-21T09:00"})
        assert refused.status_code == 409 and "in review" in refused.text  # still a draft
        review = http.post(f"{base}/status", headers=headers, json={"status": "review"})
        reviewed = review.json()["revision"]
        scheduled = http.post(f"{base}/schedule", headers=headers,
                              json={"at": "2026-11-21T09:00"})
        assert scheduled.status_code == 201, scheduled.text
        assert scheduled.json()["revision"] == reviewed
        assert scheduled.json()["at"] == "2026-11-21T08:00:00+00:00"
        # A later edit (a newer draft, still in review) is not what will publish.
        edit = http.put(base, headers=headers, json={
            "kind": "story", "slug": "harvest-opens", "title": "Unreviewed title",
            "body": "Draft text nobody reviewed.", "producers": ["zonneveld"]})
        assert edit.json()["revision"] == reviewed + 1
        asked = edit.json()["scheduled"]  # the edit asks whether to reschedule
        assert [a["revision"] for a in asked] == [reviewed]
        assert "send it for review and schedule again" in asked[0]["message"]
        assert http.get("/api/v1/stories/harvest-opens").status_code == 404
        move(live, clock, datetime(2026, 11, 21, 8, 0, tzinfo=UTC))
        deadline = time.monotonic() + 5
        while (public := http.get("/api/v1/stories/harvest-opens")).status_code == 404:
            assert time.monotonic() < deadline, "not published"
            time.sleep(0.05)
        assert public.json()["document"]["title"] == "The harvest opens"
        assert "Reviewed text." in public.json()["html"]
        done = http.get(f"{base}/schedule", headers=headers).json()
        assert [(s["state"], s["revision"]) for s in done] == [("done", reviewed)]
        assert "was not published" in done[0]["result"]
        # Unpublish at a time, once.
        off = http.post(f"{base}/schedule", headers=headers,
                        json={"action": "unpublish", "at": "2026-11-21T18:00:00+01:00"})
        assert off.status_code == 201, off.text
        move(live, clock, datetime(2026, 11, 21, 17, 0, tzinfo=UTC))
        deadline = time.monotonic() + 5
        while http.get("/api/v1/stories/harvest-opens").status_code == 200:
            assert time.monotonic() < deadline, "not unpublished"
            time.sleep(0.05)
