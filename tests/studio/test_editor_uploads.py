"""A display may name an asset the market uploaded through the pipeline (#18: the editor's
upload): the loader's cross-file checks know the market's ready uploads as well as the
files under assets/, for a save, a preview and the check `holobazaar run` makes before it
starts; another market's upload stays unknown."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from holobazaar.cli import served_content

from support.accounts import Accounts
from support.live import LiveServer
from support.waiting import processed

BOX = Path("/work/shared/corpus/gltf/Box/Box.glb")
DISPLAYS = "/api/v1/markets/{m}/displays/stall"


def _upload(http: httpx.Client, market: str, name: str, path: Path) -> dict:
    answer = http.post("/api/v1/assets", files=[("files", (path.name, path.read_bytes()))],
                       data={"market": market, "name": name})
    assert answer.status_code == 202, answer.text
    return processed(http, answer.json(), timeout=30)


def _with_model(doc: dict, asset: str) -> dict:
    doc["display"]["nodes"].append({"id": "crate", "kind": "model", "asset": asset})
    return doc


@pytest.mark.skipif(not BOX.is_file(), reason="the Khronos corpus is not in ../shared")
def test_a_ready_upload_may_be_named_by_its_market_only(server: LiveServer,
                                                        accounts: Accounts) -> None:
    def client(market: str) -> httpx.Client:
        token = accounts.token(["curator"], [market])
        return httpx.Client(base_url=server.url, timeout=10,
                            headers={"Authorization": f"Bearer {token}"})

    with client("alpha") as alpha, client("beta") as beta:
        assert _upload(alpha, "alpha", "box", BOX)["status"] == "ready"
        src = DISPLAYS.format(m="alpha") + "/source"
        got = alpha.get(src)
        doc = _with_model(got.json(), "box")
        preview = alpha.post(DISPLAYS.format(m="alpha") + "/preview", json=doc)
        assert preview.status_code == 200, preview.text
        put = alpha.put(src, json=doc, headers={"If-Match": got.headers["etag"]})
        assert put.status_code == 200, put.text
        state = alpha.get("/api/v1/displays/alpha/stall/state").json()["state"]
        assert state["nodes"]["crate"]["src"].startswith("/assets/")
        # `holobazaar run` checks the content the same way before it starts (a restart).
        assert served_content(server.app.state.settings).ok

        # beta has no asset 'box': refused with the loader's message, nothing written.
        src = DISPLAYS.format(m="beta") + "/source"
        got = beta.get(src)
        put = beta.put(src, json=_with_model(got.json(), "box"),
                       headers={"If-Match": got.headers["etag"]})
        assert put.status_code == 422
        assert "unknown asset 'box'" in put.text and "ready upload" in put.text
