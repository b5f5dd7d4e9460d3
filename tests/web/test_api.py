"""HTTP API, asset serving and live reload of scene files."""

from __future__ import annotations

import asyncio
import time

import httpx

from holobazaar.canonical import state_hash

from support.streamclient import StreamClient

MARKET = "greenhaven"
DISPLAY = "zonneveld-greens"
CHANNEL = f"market/{MARKET}/display/{DISPLAY}"
DISPLAY_FILE = f"scenes/{MARKET}/displays/{DISPLAY}.yaml"


def test_read_api(shared_server):
    with shared_server.client() as http:
        health = http.get("/healthz").json()
        assert health["status"] == "ok" and health["markets"] == [MARKET]
        markets = http.get("/api/v1/markets").json()
        assert markets[0]["id"] == MARKET and markets[0]["displays"] >= 8
        displays = http.get(f"/api/v1/markets/{MARKET}/displays").json()
        assert DISPLAY in {d["id"] for d in displays}
        entry = next(d for d in displays if d["id"] == DISPLAY)
        assert entry["channel"] == CHANNEL and entry["title"]
        state = http.get(f"/api/v1/displays/{MARKET}/{DISPLAY}/state").json()
        assert state["state_hash"] == state_hash(state["state"])
        assert http.get("/api/v1/displays/greenhaven/nope/state").status_code == 404
        assert http.get("/api/v1/markets/nope/displays").status_code == 404
        openapi = http.get("/openapi.json").json()
        assert "/api/v1/displays/{market}/{display}/state" in openapi["paths"]
        schema = http.get("/api/v1/schema/scene").json()
        assert {"MarketFile", "DisplayFile"} <= set(schema["$defs"])
        protocol = http.get("/api/v1/schema/protocol").json()
        assert {"Hello", "Snapshot", "Patch", "Error"} <= set(protocol["$defs"])
        metrics = http.get("/metrics").text
        assert "holobazaar_hub" in metrics


def test_bad_item_changes_are_refused_and_nothing_changes(shared_server):
    with shared_server.client() as http:
        url = f"/api/v1/markets/{MARKET}/items/TOM-BRANDY"
        before = http.get(f"/api/v1/displays/{MARKET}/{DISPLAY}/state").json()
        for body in ({"price": "-1"}, {"price": "NaN"}, {"price": "abc"}, {"stock": -5},
                     {"status": "gone"}, {"colour": "red"}, {"price": "1e9"}):
            response = http.patch(url, json=body, headers=shared_server.write_headers)
            assert response.status_code == 422, (body, response.text)
        assert http.patch(f"/api/v1/markets/{MARKET}/items/NOPE",
                          json={"price": "1"},
                          headers=shared_server.write_headers).status_code == 404
        after = http.get(f"/api/v1/displays/{MARKET}/{DISPLAY}/state").json()
        assert after["offset"] == before["offset"]


def test_assets_are_content_addressed_and_cached_forever(shared_server):
    with shared_server.client() as http:
        state = http.get(f"/api/v1/displays/{MARKET}/{DISPLAY}/state").json()["state"]
        src = next(n["src"] for n in state["nodes"].values() if n["kind"] == "model")
        response = http.get(src)
        assert response.status_code == 200
        assert response.headers["content-type"] == "model/gltf-binary"
        assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
        etag = response.headers["etag"]
        assert etag.strip('"') in src
        assert response.content[:4] == b"glTF"
        assert http.get(src, headers={"If-None-Match": etag}).status_code == 304
        partial = http.get(src, headers={"Range": "bytes=0-11"})
        assert partial.status_code == 206 and partial.content == response.content[:12]
        assert http.get("/assets/" + "0" * 64 + ".glb").status_code == 404
        assert http.get("/assets/../pyproject.toml").status_code == 404


def test_editing_a_scene_file_reaches_clients_and_a_broken_edit_is_rejected(live_server):
    path = live_server.content_dir / DISPLAY_FILE

    async def scenario():
        client = StreamClient(live_server.ws_url)
        await client.connect()
        await client.hello(CHANNEL)
        snap = await client.next("snapshot")
        original = path.read_text()
        path.write_text(original.replace("vegetables", "greens & roots"))
        patch = await client.next("patch", timeout=10)
        # A broken edit: nothing is sent, the last good state keeps streaming.
        path.write_text(original.replace("zone: orchard-row", "zone: nowhere"))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            health = httpx.get(f"{live_server.url}/healthz").json()
            if health["content_problems"]:
                break
            await asyncio.sleep(0.1)
        broken_frames = await client.quiet(0.3)
        path.write_text(original)
        fixed = await client.next("patch", timeout=10)
        await client.close()
        return client, snap, patch, health, broken_frames, fixed

    client, snap, patch, health, broken_frames, fixed = asyncio.run(scenario())
    assert patch["offset"] == snap["offset"] + 1
    assert any(op["path"] == "/display/title" and op["value"].endswith("greens & roots")
               for op in patch["ops"])
    assert "unknown zone 'nowhere'" in health["content_problems"]
    assert not [f for f in broken_frames if f["type"] == "patch"]
    assert fixed["offset"] == snap["offset"] + 2
    assert client.views[CHANNEL].state == snap["state"]
    assert not client.violations
