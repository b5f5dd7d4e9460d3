"""Uploading through the real API of a live server, serving the results (immutable cache,
strong ETag, Range, compression only where it helps), deduplication, and the compositor
giving displays the levels of detail of an uploaded model."""

from __future__ import annotations

import asyncio
import io
import zipfile

import pytest
from PIL import Image

from support.gltf import CORPUS, corpus_entry, side_files
from support.live import start_server
from support.streamclient import StreamClient
from support.waiting import processed

pytestmark = pytest.mark.skipif(not CORPUS.is_dir(), reason=f"no glTF corpus at {CORPUS}")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    live = start_server(tmp_path_factory.mktemp("upload"))
    yield live
    live.stop()


def wait_ready(http, asset: dict) -> dict:
    return processed(http, asset)


def post(server, files, **form):
    with server.client() as http:
        response = http.post("/api/v1/assets", headers=server.write_headers,
                             files=[("files", f) for f in files], data=form)
        assert response.status_code == 202, response.text
        first = response.json()
        return first, wait_ready(http, first)


@pytest.fixture(scope="module")
def duck(server):
    entry = corpus_entry("Duck")
    first, asset = post(server, [(entry.name, entry.read_bytes())], market="greenhaven",
                        name="tomato")
    assert first["status"] in ("queued", "processing", "ready")
    return asset


def test_upload_reports_status_sizes_and_lods(duck):
    assert duck["status"] == "ready", duck
    assert duck["source_name"] == "Duck.glb" and duck["name"] == "tomato"
    roles = {f["role"]: f for f in duck["files"]}
    assert {"lod0", "lod1", "compat", "thumbnail"} <= set(roles)
    assert roles["lod0"]["triangles"] == 4212 and roles["lod1"]["triangles"] < 4212
    assert roles["lod0"]["bytes"] < duck["input_bytes"]
    assert duck["triangles"] == 4212 and duck["output_bytes"] == roles["lod0"]["bytes"]
    assert duck["processing_ms"] > 0
    assert duck["bbox"]["min"][1] == 0


def test_the_same_input_is_stored_once(server, duck):
    before = sorted(p.name for p in (server.settings.data_dir / "assets").rglob("*"))
    entry = corpus_entry("Duck")
    first, _ = post(server, [(entry.name, entry.read_bytes())], market="greenhaven",
                        name="tomato")
    assert first["id"] == duck["id"] and first["status"] == "ready"  # not processed again
    after = sorted(p.name for p in (server.settings.data_dir / "assets").rglob("*"))
    assert after == before


def test_served_immutable_with_strong_etag_and_ranges(server, duck):
    lod0 = next(f for f in duck["files"] if f["role"] == "lod0")
    with server.client() as http:
        full = http.get(lod0["url"], headers={"accept-encoding": "identity"})
        assert full.status_code == 200
        assert full.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert full.headers["content-type"] == "model/gltf-binary"
        etag = full.headers["etag"]
        assert etag.startswith('"') and not etag.startswith("W/")
        assert len(full.content) == lod0["bytes"] and full.content[:4] == b"glTF"
        part = http.get(lod0["url"], headers={"range": "bytes=4-11",
                                              "accept-encoding": "br, gzip"})
        assert part.status_code == 206
        assert part.content == full.content[4:12]
        assert part.headers["content-range"] == f"bytes 4-11/{lod0['bytes']}"
        assert "content-encoding" not in part.headers
        again = http.get(lod0["url"], headers={"if-none-match": etag,
                                               "accept-encoding": "identity"})
        assert again.status_code == 304
        assert http.get("/assets/" + "0" * 64 + ".glb").status_code == 404


def test_compression_only_where_it_helps(server, duck):
    files = {f["role"]: f for f in duck["files"]}
    with server.client() as http:
        br = http.get(files["lod0"]["url"], headers={"accept-encoding": "br"})
        assert br.headers.get("content-encoding") == "br"
        assert int(br.headers["content-length"]) < files["lod0"]["bytes"]
        assert br.headers["etag"] != http.get(
            files["lod0"]["url"], headers={"accept-encoding": "identity"}).headers["etag"]
        assert br.content[:4] == b"glTF"  # httpx decodes it: the same bytes
        gz = http.get(files["lod0"]["url"], headers={"accept-encoding": "gzip"})
        assert gz.headers.get("content-encoding") == "gzip"
        png = http.get(files["thumbnail"]["url"], headers={"accept-encoding": "br, gzip"})
        assert png.status_code == 200 and "content-encoding" not in png.headers
        assert png.headers["content-type"] == "image/png"
        with Image.open(io.BytesIO(png.content)) as img:
            assert img.size == (256, 256)


def test_display_state_lists_the_lods_of_an_uploaded_model(server, duck):
    """The upload named `tomato` in greenhaven replaces the demo tomato file on that
    market's displays: the model nodes carry the LOD list, and the change is streamed."""
    with server.client() as http:
        state = http.get("/api/v1/displays/greenhaven/zonneveld-greens/state").json()
    tomatoes = [n for n in state["state"]["nodes"].values() if n.get("asset") == "tomato"]
    assert tomatoes
    files = {f["role"]: f for f in duck["files"]}
    for node in tomatoes:
        assert node["src"] == files["lod0"]["url"]
        assert [lod["src"] for lod in node["lods"]] == [files["lod0"]["url"],
                                                         files["lod1"]["url"]]
        assert node["lods"][0]["triangles"] == 4212
        assert node["fallback"] == files["compat"]["url"]
    crates = [n for n in state["state"]["nodes"].values() if n.get("asset") == "crate"]
    assert crates and all("lods" not in n for n in crates)  # plain files unchanged

    async def snapshot():
        client = StreamClient(server.ws_url)
        await client.connect()
        try:
            # The device class travels in hello; the state is the same for every client.
            await client.hello("market/greenhaven/display/zonneveld-greens",
                               client={"device": "phone"})
            return (await client.next("snapshot"))["state"]
        finally:
            await client.close()

    streamed = asyncio.run(snapshot())
    assert any(n.get("lods") for n in streamed["nodes"].values())


def test_multi_file_gltf_and_zip_uploads(server):
    entry = corpus_entry("BoxWithSpaces")
    files = [(p.name, p.read_bytes()) for p in [entry, *side_files(entry)]]
    _, asset = post(server, files)
    assert asset["status"] == "ready", asset
    assert asset["name"] == "box-with-spaces"
    buf = io.BytesIO()
    entry = corpus_entry("TextureTransformTest")
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in [entry, *side_files(entry)]:
            zf.writestr(f"model/{p.name}", p.read_bytes())
    _, asset = post(server, [("transform.zip", buf.getvalue())])
    assert asset["status"] == "ready", asset
    with server.client() as http:
        listed = http.get("/api/v1/assets").json()
        assert {a["source_name"] for a in listed} >= {
            "Box With Spaces.gltf", "transform.zip/model/TextureTransformTest.gltf"}
        assert http.get("/api/v1/assets/nothex").status_code == 404


def test_image_upload(server):
    img = Image.new("RGB", (300, 200), (200, 60, 40))
    buf = io.BytesIO()
    img.save(buf, "JPEG")
    _, asset = post(server, [("sign.jpg", buf.getvalue())])
    assert asset["status"] == "ready" and asset["kind"] == "image"
    files = {f["role"]: f for f in asset["files"]}
    assert files["image"]["media_type"] == "image/webp"
    assert files["compat"]["media_type"] == "image/jpeg"
    with server.client() as http:
        data = http.get(files["image"]["url"]).content
    with Image.open(io.BytesIO(data)) as out:
        assert out.size == (256, 128)  # power of two, aspect kept as near as it can be


def test_interrupted_jobs_are_failed_on_start(tmp_path):
    """A record a server stopped mid-processing before jobs were kept in the store (no job,
    no lease) is claimed and failed: no asset stays stuck at `processing`."""
    from datetime import UTC, datetime

    from holobazaar import db
    from holobazaar.assets.models import StoredAsset
    from holobazaar.db import session_scope

    live = start_server(tmp_path)
    engine = live.app.state.services.engine
    with session_scope(engine) as s:
        s.add(StoredAsset(id="a" * 64, source="a" * 64, name="x", source_name="x.glb", kind="model",
                          status="processing", input_bytes=1, warnings=[],
                          created_at=datetime.now(UTC)))
    url = live.settings.resolved_database_url
    live.stop()
    again = start_server(tmp_path, content_dir=live.settings.content_dir)
    try:
        with again.client() as http:
            asset = processed(http, {"id": "a" * 64, "status": "processing"}, timeout=10)
        assert asset["status"] == "failed" and "interrupted" in asset["error"]
    finally:
        again.stop()
    assert db is not None and url


def test_the_same_upload_at_the_same_moment_is_one_asset(server):
    """Eight identical uploads in parallel: one asset, processed once, no server error."""
    from concurrent.futures import ThreadPoolExecutor

    entry = corpus_entry("Box")

    def send(_):
        with server.client() as http:
            return http.post("/api/v1/assets", headers=server.write_headers,
                             files=[("files", (entry.name, entry.read_bytes()))])

    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(send, range(8)))
    assert {r.status_code for r in responses} == {202}
    ids = {r.json()["id"] for r in responses}
    assert len(ids) == 1
    with server.client() as http:
        asset = wait_ready(http, responses[0].json())
    assert asset["status"] == "ready"
