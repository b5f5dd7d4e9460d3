"""Show control over the real HTTP API with real WebSocket clients: cue frames in the
zone channel's log, late joiners, resume, refusals, idempotent GO, spread reports."""

from __future__ import annotations

import asyncio
import concurrent.futures

import pytest

from support.live import LiveServer
from support.streamclient import StreamClient

BASE = "/api/v1/shows/greenhaven/harvest-collective"
ZONE = "market/greenhaven/zone/orchard-row"
OTHER_ZONE = "market/greenhaven/zone/fungi-grotto"


def post(live: LiveServer, path: str, json=None):
    with live.client() as http:
        return http.post(f"{BASE}{path}", json=json, headers=live.write_headers)


def test_show_control_needs_a_performer(shared_server: LiveServer):
    with shared_server.client() as http:
        assert http.post(f"{BASE}/go").status_code == 401
        assert http.get(BASE).status_code == 401
        assert http.post(f"{BASE}/go", headers={"Authorization": "Bearer nope"}
                         ).status_code == 401
        missing = http.get("/api/v1/shows/greenhaven/nope", headers=shared_server.write_headers)
    assert missing.status_code == 404
    assert missing.json()["detail"] == ("market 'greenhaven' has no show 'nope' "
                                        "(shows: harvest-collective)")


def test_go_sends_a_cue_frame_through_the_zone_log_a_lead_ahead(live_server: LiveServer):
    async def scenario():
        client, elsewhere = StreamClient(live_server.ws_url), StreamClient(live_server.ws_url)
        await client.connect()
        await elsewhere.connect()
        await client.hello(ZONE)
        await elsewhere.hello(OTHER_ZONE)
        snapshot = await client.next("snapshot")
        assert snapshot["state"]["show"] is None
        await elsewhere.next("snapshot")
        response = await asyncio.to_thread(post, live_server, "/go")
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["result"]["fired"] == "harvest-collective:1:0"
        assert body["standby"]["number"] == "6"
        assert body["devices"] == 1
        cue = (await client.next("cue"))["cue"]
        assert cue["number"] == "1" and cue["event"] == "go"
        assert cue["start_time"] - body["server_time"] == pytest.approx(150, abs=30)
        assert {a["kind"] for a in cue["actions"]} == {"mood", "overlay", "audio"}
        await client.next("patch")  # the zone state follows its cue frame
        view = client.views[ZONE]
        assert view.state["show"]["cues"][0]["id"] == cue["id"]
        assert view.state["show"]["status"] == "running"
        assert client.violations == []
        assert [f for f in await elsewhere.quiet(0.3) if f["type"] == "cue"] == []
        await client.close()
        await elsewhere.close()
    asyncio.run(scenario())


def test_late_joiner_gets_the_running_cue_in_its_snapshot(live_server: LiveServer):
    async def scenario():
        assert (await asyncio.to_thread(post, live_server, "/go")).status_code == 200
        await asyncio.sleep(0.4)
        late = StreamClient(live_server.ws_url)
        await late.connect()
        await late.hello(ZONE)
        snapshot = await late.next("snapshot")
        show = snapshot["state"]["show"]
        assert show["id"] == "harvest-collective" and show["status"] == "running"
        running = show["cues"][-1]
        assert running["number"] == "1" and running["duration"] == 8000
        # Joining mid-cue: the cue started before the snapshot was taken.
        elapsed = late.welcome["server_time"] - running["start_time"]
        assert 0 < elapsed < running["duration"]
        await late.close()
    asyncio.run(scenario())


def test_resume_replays_cue_frames_in_order(live_server: LiveServer):
    async def scenario():
        client = StreamClient(live_server.ws_url)
        await client.connect()
        await client.hello(ZONE)
        await client.next("snapshot")
        await client.close()
        assert (await asyncio.to_thread(post, live_server, "/go")).status_code == 200
        assert (await asyncio.to_thread(post, live_server, "/stop")).status_code == 200
        await client.connect()
        await client.hello(ZONE, resume=True)
        frames = [f for f in await client.quiet(0.5) if f["type"] != "error"]
        assert client.snapshots == 1  # resumed, no new snapshot
        # Each cue frame, then the zone state carrying it (the show's state).
        assert [(f["type"], f.get("cue", {}).get("event")) for f in frames] == [
            ("cue", "go"), ("patch", None), ("cue", "stop"), ("patch", None)]
        assert client.violations == []
        assert client.views[ZONE].state["show"]["status"] == "stopped"
        await client.close()
    asyncio.run(scenario())


def test_refused_operations_fire_nothing(live_server: LiveServer):
    async def scenario():
        client = StreamClient(live_server.ws_url)
        await client.connect()
        await client.hello(ZONE)
        await client.next("snapshot")
        jump = await asyncio.to_thread(post, live_server, "/jump", {"number": "42"})
        assert jump.status_code == 404
        assert jump.json()["detail"] == ("show 'harvest-collective' has no cue '42' "
                                         "(cues: 1, 2, 3, 4, 5, 6, 7)")
        bad = await asyncio.to_thread(post, live_server, "/jump", {"number": "../1"})
        assert bad.status_code == 422
        extra = await asyncio.to_thread(post, live_server, "/go", {"cue": "x", "force": True})
        assert extra.status_code == 422
        assert (await asyncio.to_thread(post, live_server, "/resume")).status_code == 409
        assert (await asyncio.to_thread(post, live_server, "/stop")).status_code == 200
        stopped = await asyncio.to_thread(post, live_server, "/go")
        assert stopped.status_code == 409
        assert "stopped" in stopped.json()["detail"]
        frames = await client.quiet(0.3)
        assert [f["cue"]["event"] for f in frames if f["type"] == "cue"] == ["stop"]
        await client.close()
    asyncio.run(scenario())


def test_two_performers_pressing_go_together_fire_the_cue_once(live_server: LiveServer):
    with live_server.client() as http:
        standby = http.get(BASE, headers=live_server.write_headers).json()["standby"]["id"]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: post(live_server, "/go", {"cue": standby}),
                                range(4)))
    codes = sorted(r.status_code for r in results)
    assert codes == [200, 409, 409, 409], [r.text for r in results]
    with live_server.client() as http:
        state = http.get(BASE, headers=live_server.write_headers).json()
    assert [c["number"] for c in state["cues"]] == ["1"]


def test_heartbeat_cue_reports_give_the_console_its_spread(live_server: LiveServer):
    async def scenario():
        clients = [StreamClient(live_server.ws_url) for _ in range(3)]
        for c in clients:
            await c.connect()
            await c.hello(ZONE)
            await c.next("snapshot")
        assert (await asyncio.to_thread(post, live_server, "/go")).status_code == 200
        for skew, c in zip((-4.0, 0.0, 6.0), clients, strict=True):
            cue = (await c.next("cue"))["cue"]
            view = c.views[ZONE]
            await c.send({"type": "heartbeat", "channel": ZONE, "offset": view.offset,
                          "state_hash": "0" * 64,
                          "cue": {"id": cue["id"], "executed_at": cue["start_time"] + skew}})
        await asyncio.sleep(0.3)
        with live_server.client() as http:
            state = http.get(BASE, headers=live_server.write_headers).json()
        assert state["devices"] == 3
        assert state["sync"]["devices"] == 3
        assert state["sync"]["spread_ms"] == 10.0
        assert state["sync"]["number"] == "1"
        for c in clients:
            await c.close()
    asyncio.run(scenario())
