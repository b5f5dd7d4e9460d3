"""Hostile and broken uploads through the real HTTP API of a live server: each is refused
with a message naming the problem, nothing is stored, and the server keeps serving."""

from __future__ import annotations

import base64
import io
import struct
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from support.gltf import TRIANGLE, glb, png_header, triangle_glb
from support.live import start_server
from support.waiting import processed


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    live = start_server(tmp_path_factory.mktemp("bad"), asset_max_upload_bytes=2_000_000,
                        asset_timeout=30)
    yield live
    live.stop()


def upload(server, files: list[tuple[str, bytes]], **form) -> dict:
    """POST the files; returns the final answer: the 4xx detail or the processed status."""
    with server.client() as http:
        response = http.post("/api/v1/assets", headers=server.write_headers,
                             files=[("files", (n, d)) for n, d in files], data=form)
        if response.status_code != 202:
            return {"http": response.status_code, "detail": response.json()["detail"]}
        return {"http": 202, **processed(http, response.json(), timeout=60)}


def refusal(result: dict) -> str:
    if result["http"] != 202:
        assert result["http"] == 422, result
        return str(result["detail"])
    assert result["status"] == "failed", result
    assert result["files"] == []
    return result["error"]


def stored_files(server) -> list[Path]:
    root = server.settings.data_dir / "assets"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def assert_unaffected(server) -> None:
    with server.client() as http:
        assert http.get("/healthz").status_code == 200
        assert http.get("/api/v1/displays/greenhaven/zonneveld-greens/state").status_code == 200
    assert stored_files(server) == []
    leftovers = [p for p in (server.settings.data_dir / "tmp").glob("*")]
    assert leftovers == [], leftovers


def gltf_with_uri(uri: str) -> bytes:
    return (b'{"asset":{"version":"2.0"},"buffers":[{"uri":"' + uri.encode() +
            b'","byteLength":36}]}')


def glb_with_embedded_image(image: bytes) -> bytes:
    return glb({"asset": {"version": "2.0"}, "buffers": [{"byteLength": len(image)}],
                "bufferViews": [{"buffer": 0, "byteLength": len(image)}],
                "images": [{"bufferView": 0, "mimeType": "image/png"}]}, image)


CASES = {
    "truncated GLB": ([("m.glb", triangle_glb(TRIANGLE)[:30])], "header says"),
    "tiny GLB": ([("m.glb", b"glTF\x02\0\0\0")], "truncated GLB"),
    "lying GLB length": ([("m.glb", triangle_glb(TRIANGLE)[:12] + b"\0" * 8)], "header says"),
    "chunk past the end": ([("m.glb", struct.pack("<4sII", b"glTF", 2, 28) +
                             struct.pack("<I4s", 999, b"JSON") + b"{}      ")], "past the end"),
    "GLB version 1": ([("m.glb", struct.pack("<4sII", b"glTF", 1, 20) + b"\0" * 8)],
                      "version 1"),
    "not a GLB": ([("m.glb", b"PK\x03\x04" + b"\0" * 40)], 'signature "glTF"'),
    "bad JSON": ([("m.gltf", b"{not json")], "not valid glTF JSON"),
    "uri ../": ([("m.gltf", gltf_with_uri("../secret.bin"))], "outside the upload"),
    "uri encoded ../": ([("m.gltf", gltf_with_uri("%2e%2e/secret.bin"))], "outside the upload"),
    "absolute uri": ([("m.gltf", gltf_with_uri("/etc/passwd"))], "not a relative path"),
    "file: uri": ([("m.gltf", gltf_with_uri("file:///etc/passwd"))], "never fetched"),
    "missing file": ([("m.gltf", gltf_with_uri("nothere.bin"))], "was not uploaded"),
    "accessor overrun": ([("m.glb", triangle_glb(TRIANGLE, accessor_count=1000))],
                         "overruns its buffer"),
    "buffer longer than data": ([("m.glb", triangle_glb(TRIANGLE, declared_length=4096))],
                                "declares 4096 bytes"),
    "NaN vertex": ([("m.glb", triangle_glb([0.0, float("nan"), 0.0, 1, 0, 0, 0, 1, 0]))],
                   "non-finite"),
    "infinite vertex": ([("m.glb", triangle_glb([0.0, float("inf"), 0.0, 1, 0, 0, 0, 1, 0]))],
                        "non-finite"),
    "image bomb": ([("bomb.png", png_header(60_000, 60_000))], "decompression bomb"),
    "image bomb inside a GLB": ([("m.glb", glb_with_embedded_image(png_header(60_000, 60_000)))],
                                "decompression bomb"),
    "image bomb beside a glTF": ([("m.gltf", b'{"asset":{"version":"2.0"},"images":[{"uri":'
                                   b'"t.png"}]}'), ("t.png", png_header(60_000, 60_000))],
                                 "decompression bomb"),
    "unsupported format": ([("model.fbx", b"Kaydara FBX Binary")], "unsupported file type"),
    "no extension": ([("README", b"hello")], "unsupported file type"),
    "path in file name": ([("../evil.glb", triangle_glb(TRIANGLE))], "not allowed"),
    "two models": ([("a.glb", triangle_glb(TRIANGLE)), ("b.stl", b"solid x\nendsolid x\n")],
                   "one model per upload"),
    "broken STL": ([("m.stl", b"solid x\nfacet normal garbage\n")], "m.stl"),
    "over the size cap": ([("big.glb", b"\0" * 2_100_000)], "over the upload limit"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_refused_with_a_clear_message(server, case):
    files, expected = CASES[case]
    message = refusal(upload(server, files))
    assert expected in message, message
    assert_unaffected(server)


def test_remote_uris_are_never_fetched(server):
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"\0" * 36)

        def log_message(self, *args):
            pass

    httpd = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{httpd.server_port}/buffer.bin"
        for uri in (url, "//127.0.0.1/x.bin", "HTTPS://example.invalid/x.bin"):
            message = refusal(upload(server, [("m.gltf", gltf_with_uri(uri))]))
            assert "never fetched" in message
        image = (b'{"asset":{"version":"2.0"},"images":[{"uri":"' + url.encode() + b'"}]}')
        assert "never fetched" in refusal(upload(server, [("i.gltf", image)]))
    finally:
        httpd.shutdown()
    assert hits == []
    assert_unaffected(server)


def _zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_zip_path_traversal_is_refused(server):
    for name in ("../evil.glb", "/abs/evil.glb", "a/../../evil.glb"):
        message = refusal(upload(server, [("m.zip", _zip({name: triangle_glb(TRIANGLE)}))]))
        assert "outside the upload" in message
    assert not (server.settings.data_dir / "evil.glb").exists()
    assert_unaffected(server)


def test_zip_symlink_is_refused(server):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        info = zipfile.ZipInfo("link.glb")
        info.external_attr = (0o120777 << 16)
        zf.writestr(info, "/etc/passwd")
    assert "symbolic link" in refusal(upload(server, [("m.zip", buf.getvalue())]))
    assert_unaffected(server)


def test_zip_bomb_is_refused(server):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf, \
            zf.open("m.glb", "w", force_zip64=True) as member:
        block = b"\0" * (1 << 20)
        for _ in range(300):  # 300 MB of zeros, about 300 KB compressed
            member.write(block)
    message = refusal(upload(server, [("bomb.zip", buf.getvalue())]))
    assert "zip bomb" in message
    assert_unaffected(server)


def test_not_a_zip(server):
    assert "not a readable zip" in refusal(upload(server, [("m.zip", b"PK not really")]))
    assert_unaffected(server)


def test_data_uri_that_is_not_base64(server):
    doc = gltf_with_uri("data:application/octet-stream;base64,@@@")
    assert "not valid base64" in refusal(upload(server, [("m.gltf", doc)]))
    ok = gltf_with_uri("data:application/octet-stream;base64," +
                       base64.b64encode(b"\0" * 8).decode())
    assert "declares 36 bytes" in refusal(upload(server, [("m.gltf", ok)]))
    assert_unaffected(server)


def test_anonymous_and_foreign_market_uploads_are_refused(server):
    with server.client() as http:
        response = http.post("/api/v1/assets", files=[("files", ("m.glb", b"x"))])
        assert response.status_code == 401
        from holobazaar.accounts import service

        token, _ = service.create_token(server.app.state.services.engine, "other curator",
                                        ["curator"],
                                        ["elsewhere"], None, actor="tests")
        response = http.post("/api/v1/assets", headers={"Authorization": f"Bearer {token}"},
                             files=[("files", ("m.glb", b"x"))], data={"market": "greenhaven"})
        assert response.status_code == 403
        assert "greenhaven" in response.json()["detail"]
    assert_unaffected(server)


def test_bad_form_fields(server):
    with server.client() as http:
        response = http.post("/api/v1/assets", headers=server.write_headers,
                             files=[("files", ("m.stl", b"x"))], data={"units": "furlong"})
        assert response.status_code == 422
        assert "units must be one of" in response.text
        response = http.post("/api/v1/assets", headers=server.write_headers,
                             files=[("files", ("m.stl", b"x"))], data={"size": "-1"})
        assert response.status_code == 422
        assert "size" in response.text
        response = http.post("/api/v1/assets", headers=server.write_headers,
                             files=[("files", ("m.stl", b"x"))], data={"market": "nowhere"})
        assert response.status_code == 422
        assert "no market 'nowhere'" in response.text
    assert_unaffected(server)


def test_worker_time_and_memory_limits(tmp_path):
    """A job over its time limit is killed; one over its memory limit fails; both are
    refusals with a message, and the calling process carries on."""
    from holobazaar.assets.pipeline import Refused
    from holobazaar.assets.pipeline.options import Options
    from holobazaar.assets.worker import run_in_worker

    from support.gltf import CORPUS, corpus_entry

    if not CORPUS.is_dir():
        pytest.skip(f"no glTF corpus at {CORPUS}")
    source = corpus_entry("MetalRoughSpheresNoTextures")
    # The memory case gets 45 s: on two busy cores it took over 20 s to reach its limit.
    for n, options, expected in ((1, Options(timeout=1.0), "longer than"),
                                 (2, Options(memory_bytes=200 << 20, timeout=45), "memory")):
        upload_dir, out = tmp_path / f"u{n}", tmp_path / f"o{n}"
        upload_dir.mkdir()
        out.mkdir()
        (upload_dir / source.name).write_bytes(source.read_bytes())
        started = time.monotonic()
        with pytest.raises(Refused, match=expected):
            run_in_worker([upload_dir / source.name], upload_dir, out, options)
        assert time.monotonic() - started < 60  # killed, not left running
    ok = glb({"asset": {"version": "2.0"}})
    assert ok[:4] == b"glTF"
