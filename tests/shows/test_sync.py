"""Sync across devices with real WebSocket clients on loopback, each with its own
artificial round-trip time (0-200 ms) and clock skew (±2 s): the instants they run one cue
lie within 20 ms of each other, and the console's measured spread says so too. (The
200-device run is bench/showsync.py.)"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from support.live import start_server
from support.syncsim import make_devices, spread

ZONE = "market/greenhaven/zone/orchard-row"
BASE = "/api/v1/shows/greenhaven/harvest-collective"
DEVICES = 24


def test_devices_with_latency_and_skew_run_a_cue_within_20_ms(tmp_path: Path):
    # A lead of 400 ms, not the default 150: the slowest device is 100 ms away, and on a
    # test machine running other tests the 50 ms left over was sometimes not enough for
    # every device to hold the cue before its start. The spread does not depend on it.
    live_server = start_server(tmp_path, show_lead_ms=400.0)

    async def scenario():
        devices = make_devices(live_server.ws_url, DEVICES, seed=11)
        await asyncio.gather(*(d.connect(ZONE) for d in devices))
        await asyncio.gather(*(d.sync_clock() for d in devices))
        skews = [d.skew_ms for d in devices]
        assert max(skews) - min(skews) > 2000  # the clocks really disagree
        async with httpx.AsyncClient(base_url=live_server.url) as http:
            response = await http.post(f"{BASE}/go", headers=live_server.write_headers)
            assert response.status_code == 200, response.text
            async with asyncio.timeout(5):
                while not all(d.executions for d in devices):
                    await asyncio.sleep(0.02)
            await asyncio.gather(*(d.report(ZONE) for d in devices))
            await asyncio.sleep(0.5)
            state = (await http.get(BASE, headers=live_server.write_headers)).json()
        runs = [d.executions[0] for d in devices]
        assert len({r.cue_id for r in runs}) == 1
        assert all(r.early_ms > 0 for r in runs)  # every device had the cue before its start
        # The instants the devices' clocks call the cue's start: the protocol's promise.
        planned = [r.planned_ms for r in runs]
        assert spread(planned) <= 20.0, sorted(planned)
        # When their timers really ran (adds the test machine's scheduling): a loose bound.
        assert spread([r.true_ms for r in runs]) <= 60.0
        assert state["sync"]["devices"] == DEVICES
        assert state["sync"]["p99_spread_ms"] <= 20.0, state["sync"]
        assert state["devices"] == DEVICES
        await asyncio.gather(*(d.close() for d in devices))
    try:
        asyncio.run(scenario())
    finally:
        live_server.stop()
