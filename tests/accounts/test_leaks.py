"""No response names the server's folders (#28, finding 7): broken uploads are refused
with the file's name, never its path under the data folder, to anonymous readers of
/api/v1/assets or anyone else; HTTP error details lose server paths (general guard)."""

from __future__ import annotations

import io
import tempfile
import zipfile
from pathlib import Path

import httpx
from fastapi import FastAPI, HTTPException

from holobazaar.redact import exception_text, install_error_guard, without_paths

from support.waiting import processed

BROKEN = [
    ("x.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40),
    ("photo.jpg", b"\xff\xd8\xff\xe0" + b"garbage" * 10),
    ("model.obj", b"v 1 2\nf 1 2 9\n\x00\x01"),
    ("scan.ply", b"ply\nformat binary_little_endian 1.0\nelement vertex 99\nend_header\n"),
    ("bundle.zip", b"PK\x03\x04" + b"\x00" * 30),
    ("scene.gltf", b'{"asset": {"version": "2.0"}, "buffers": [{"uri": "/etc/passwd"}]}'),
]


def _zip_with_bad_image() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("model.gltf", '{"asset": {"version": "2.0"}, "images": [{"uri": "t.png"}]}')
        z.writestr("t.png", b"\x89PNG\r\n\x1a\nbroken")
    return out.getvalue()


def _settle(c: httpx.Client, asset: dict) -> dict:
    return processed(c, asset, timeout=60)


def test_broken_uploads_never_show_the_data_folder(server, accounts):
    token = accounts.token(["curator"], ["alpha"])
    data = server.settings.data_dir
    secret_parts = {str(data), str(data.resolve()), str(Path(tempfile.gettempdir())) + "/",
                    "upload-"}
    answers: list[str] = []
    with server.client() as c:
        for name, body in [*BROKEN, ("pack.zip", _zip_with_bad_image())]:
            r = c.post("/api/v1/assets", headers={"Authorization": f"Bearer {token}"},
                       files=[("files", (name, body))], data={"market": "alpha"})
            answers.append(r.text)
            if r.status_code == 202:
                settled = _settle(c, r.json())
                assert settled["status"] == "failed", settled
                answers.append(str(settled["error"]))
            else:
                assert r.status_code in (413, 415, 422), r.text
        listing = c.get("/api/v1/assets")  # anonymous, as the attacker read it
        assert listing.status_code == 200
        answers.append(listing.text)
    print("refusals:", [a[:120] for a in answers[:-1]])
    assert any("x.png" in a for a in answers)
    for text in answers:
        leaked = [p for p in secret_parts if p in text]
        assert not leaked, f"{leaked} in {text[:300]}"


def test_library_messages_lose_their_paths():
    pillow = "cannot identify image file '/srv/hb/var/tmp/upload-3f/x.png'"
    assert without_paths(pillow) == "cannot identify image file 'x.png'"
    assert without_paths("see https://example.org/a/b") == "see https://example.org/a/b"
    assert exception_text(FileNotFoundError(2, "No such file or directory", "/srv/x/y")) \
        == "No such file or directory"


def test_http_error_details_lose_server_folders(tmp_path):
    app = FastAPI()
    install_error_guard(app, tmp_path)

    @app.get("/boom")
    def boom() -> None:
        raise HTTPException(422, f"cannot read {tmp_path / 'var' / 'x.json'}: bad")

    from fastapi.testclient import TestClient

    with TestClient(app) as client:
        r = client.get("/boom")
    assert r.status_code == 422
    assert str(tmp_path) not in r.text and "x.json: bad" in r.text
