"""What pulse keeps and gives back: CSV export (k-anonymous, curators only), the day's
series, held feedback, raw events surviving a restart, and bindings on displays."""

from __future__ import annotations

import asyncio
import csv
import io
import time
from pathlib import Path

import yaml

from .reactions import (
    DISPLAY_A,
    DISPLAY_B,
    MARKET,
    device_id,
    display_channel,
    reaction,
    within_one_minute,
)
from support.content import copy_content
from support.live import LiveServer, start_server
from support.streamclient import joined


async def tap(live: LiveServer, display: str, devices: int, kind: str = "love",
              **extra) -> None:
    client = await joined(live.ws_url, display_channel(display))
    for _ in range(devices):
        await client.send(reaction(display, kind, **extra))
    await client.quiet(0.3)
    assert client.errors == []
    await client.close()


def test_csv_export_is_k_anonymous_and_for_curators(live_server: LiveServer) -> None:
    within_one_minute()  # the export is per minute; the series must have one point
    asyncio.run(tap(live_server, DISPLAY_A, 5))
    asyncio.run(tap(live_server, DISPLAY_B, 2, "hungry"))
    pulse = live_server.app.state.services.pulse
    live_server.call(pulse.flush, True)  # close the current minute now
    with live_server.client() as http:
        assert http.get(f"/api/v1/pulse/{MARKET}/export.csv").status_code == 401
        response = http.get(f"/api/v1/pulse/{MARKET}/export.csv",
                            headers=live_server.write_headers)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/csv")
        assert "attachment" in response.headers["content-disposition"]
        rows = list(csv.DictReader(io.StringIO(response.text)))
        assert list(rows[0]) == ["minute_utc", "scope", "scope_id", "devices", "love", "wow",
                                 "hungry", "learn", "reactions", "dwell_reports",
                                 "dwell_median_s", "mood"]
        shown = {(r["scope"], r["scope_id"]): r for r in rows}
        # Display B (2 devices) and its zone are below k=5: not in the export at all.
        assert set(shown) == {("market", MARKET), ("zone", "orchard-row"),
                              ("display", DISPLAY_A)}
        assert shown[("display", DISPLAY_A)]["love"] == "5"
        assert shown[("display", DISPLAY_A)]["devices"] == "5"
        assert shown[("market", MARKET)]["hungry"] == "2"  # inside a large enough group
        assert shown[("market", MARKET)]["devices"] == "7"

        series = http.get(f"/api/v1/pulse/{MARKET}/series",
                          params={"scope": "display", "id": DISPLAY_A},
                          headers=live_server.write_headers).json()
        assert [p["counts"]["love"] for p in series["points"]] == [5]
        hidden = http.get(f"/api/v1/pulse/{MARKET}/series",
                          params={"scope": "display", "id": DISPLAY_B},
                          headers=live_server.write_headers).json()
        assert hidden["points"] == []
        bad = http.get(f"/api/v1/pulse/{MARKET}/export.csv",
                       params={"since": "2026-02-10", "until": "2026-01-01"},
                       headers=live_server.write_headers)
        assert bad.status_code == 422 and "until" in bad.text
        assert http.get("/api/v1/pulse/nowhere/export.csv",
                        headers=live_server.write_headers).status_code in (403, 404)


def test_feedback_is_sanitized_and_held(live_server: LiveServer) -> None:
    asyncio.run(tap(live_server, DISPLAY_A, 1,
                    text="Lovely \u202etomatoes!!!!!!!!!!!! www.spam.example " + "tomato " * 60))
    pulse = live_server.app.state.services.pulse
    live_server.call(pulse.flush)
    with live_server.client() as http:
        assert http.get(f"/api/v1/pulse/{MARKET}/feedback").status_code == 401
        held = http.get(f"/api/v1/pulse/{MARKET}/feedback",
                        headers=live_server.write_headers).json()
        assert len(held) == 1
        item = held[0]
        assert item["text"].startswith("Lovely tomatoes!!! [link removed] tomato tomato")
        assert len(item["text"]) <= 280 and item["text"].endswith("…")
        assert item["status"] == "held"
        assert "links removed" in item["flags"] and "cut to 280" in item["flags"]
        decided = http.post(f"/api/v1/pulse/{MARKET}/feedback/{item['id']}",
                            json={"status": "approved"}, headers=live_server.write_headers)
        assert decided.json() == {"id": item["id"], "status": "approved"}
        assert http.get(f"/api/v1/pulse/{MARKET}/feedback",
                        headers=live_server.write_headers).json() == []
        bad = http.post(f"/api/v1/pulse/{MARKET}/feedback/{item['id']}",
                        json={"status": "published"}, headers=live_server.write_headers)
        assert bad.status_code == 422
    assert pulse.stats["feedback_held"] == 1 and pulse.stats["feedback_sanitized"] == 1


def test_todays_windows_survive_a_restart(tmp_path: Path) -> None:
    live = start_server(tmp_path)
    try:
        asyncio.run(tap(live, DISPLAY_A, 5, "wow"))
        # Reactions to a recipe card are replayed per recipe too (pulse_event.recipe).
        state = live.app.state.services.hub.snapshot(display_channel(DISPLAY_A))[2]
        recipe = state["bindings"]["stories"]["recipes"][0]["slug"]
        asyncio.run(tap(live, DISPLAY_A, 5, "love", recipe=recipe))
    finally:
        live.stop()  # flushes raw events on the way out
    again = start_server(tmp_path, content_dir=tmp_path / "content")
    try:
        day = again.app.state.services.pulse.state(MARKET)["windows"]["day"]
        assert day["displays"][DISPLAY_A]["counts"]["wow"] == 5
        assert day["displays"][DISPLAY_A]["devices"] == 10
        assert day["recipes"][recipe]["counts"]["love"] == 5
        assert day["recipes"][recipe]["devices"] == 5
    finally:
        again.stop()


def test_bindings_update_a_display_throttled(tmp_path: Path) -> None:
    content = copy_content(tmp_path / "content")
    path = content / "scenes" / MARKET / "displays" / f"{DISPLAY_A}.yaml"
    scene = yaml.safe_load(path.read_text())
    scene["display"]["nodes"].append({
        "id": "favourites", "kind": "text", "position": [0, 0.6, -0.25],
        "text": "Loved today: {{ pulse.most_loved(limit=3) }}"
                "{% if pulse.mood %} · mood {{ pulse.mood }}{% endif %}"})
    path.write_text(yaml.safe_dump(scene, sort_keys=False))
    live = start_server(tmp_path, content_dir=content, pulse_binding_interval=2.0)
    channel = display_channel(DISPLAY_A)

    async def scenario() -> None:
        viewer = await joined(live.ws_url, channel)
        title = viewer.views[channel].state["display"]["title"]
        assert viewer.views[channel].state["nodes"]["favourites"]["text"] == "Loved today: "
        tappers = [await joined(live.ws_url, channel) for _ in range(4)]
        started = time.monotonic()
        for _ in range(6):  # 6 s of taps from 4 connections, new devices every time
            for client in tappers:
                await client.send(reaction(DISPLAY_A, device=device_id()))
            await asyncio.sleep(1.0)
        await asyncio.sleep(2.5)
        elapsed = time.monotonic() - started
        text = viewer.views[channel].state["nodes"]["favourites"]["text"]
        assert text.startswith(f"Loved today: {title} · mood "), text
        changes = [f for f in viewer.frames if f["type"] == "patch"
                   and any(op["path"].startswith("/nodes/favourites") for op in f["ops"])]
        # 24 taps, yet at most one display update per binding interval (2 s).
        assert 1 <= len(changes) <= elapsed / 2.0 + 1, len(changes)
        assert viewer.violations == []
        for client in [viewer, *tappers]:
            await client.close()

    try:
        asyncio.run(scenario())
        assert live.app.state.services.pulse_bindings.refreshes <= 5
    finally:
        live.stop()
