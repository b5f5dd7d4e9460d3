"""The offline service worker's script (docs/client.md, "Offline and poor network"): served at
/sw.js (scope: the whole site) never cached by HTTP, with the display page's files as its
precache list in place of the build's placeholder, never the test-only emulator's files;
404 when the client is not built."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from holobazaar.config import Settings
from holobazaar.web.client import ClientBuild, emulator_files

from support.live import LiveServer

DIST = Settings().client_dir
SW_BUILT = (DIST / "sw.js").is_file() and (DIST / ".vite" / "manifest.json").is_file()


@pytest.mark.skipif(not SW_BUILT, reason="web client not built (make setup)")
def test_sw_js_carries_the_display_pages_files(shared_server: LiveServer) -> None:
    with shared_server.client() as client:
        response = client.get("/sw.js")
        page = client.get("/d/greenhaven/zonneveld-greens").text
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["service-worker-allowed"] == "/"
    assert "self.__WB_MANIFEST" not in response.text
    listed = {entry["url"] for entry in json.loads(
        re.search(r'\[\{"url":"/client/.*?\}\]', response.text).group(0))}
    # What the display page loads first is there: its script, CSS and preloaded chunks.
    for href in re.findall(r'(?:src|href)="(/client/[^"]+)"', page):
        assert href in listed, href
    manifest = json.loads((DIST / ".vite" / "manifest.json").read_text())
    assert not listed & {f"/client/{name}" for name in emulator_files(manifest)}
    # Only the client's own files: the API, the stream and staff pages are never precached.
    assert all(url.startswith("/client/") for url in listed)


def test_no_service_worker_without_a_build(tmp_path: Path) -> None:
    assert ClientBuild(tmp_path).service_worker() is None
    (tmp_path / "sw.js").write_text("precacheAndRoute(self.__WB_MANIFEST);")
    assert ClientBuild(tmp_path).service_worker() is None  # no manifest: nothing to list
