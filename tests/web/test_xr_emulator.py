"""The WebXR emulator (IWER, @iwer/sem and its room captures) is test-only (issue #18): a
server without HOLOBAZAAR_XR_EMULATOR answers 404 for every file only the emulator's chunk
reaches, and its display page does not offer it; with the setting on it is served."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from holobazaar.config import Settings
from holobazaar.web.client import EMULATOR, emulator_files

from support.live import start_server

DISPLAY = "/d/greenhaven/zonneveld-greens"
BOOT = r'<script type="application/json" id="holo-boot">(.*?)</script>'
MANIFEST = Settings().client_dir / ".vite" / "manifest.json"


def test_only_files_reached_solely_by_the_emulator() -> None:
    manifest = {
        "src/page.js": {"file": "assets/page-1.js", "isEntry": True,
                        "imports": ["_three.js"], "dynamicImports": [EMULATOR]},
        EMULATOR: {"file": "assets/emulate-1.js", "imports": ["src/page.js", "_three.js"],
                   "dynamicImports": ["room.json"], "assets": ["assets/room-1.json"]},
        "room.json": {"file": "assets/room-1.js", "css": ["assets/room-1.css"]},
        "_three.js": {"file": "assets/three-1.js"},
    }
    assert emulator_files(manifest) == {"assets/emulate-1.js", "assets/room-1.js",
                                        "assets/room-1.css", "assets/room-1.json"}
    assert emulator_files({}) == frozenset()


@pytest.mark.skipif(not MANIFEST.is_file(), reason="web client not built (make setup)")
def test_emulator_served_only_with_the_setting(tmp_path: Path) -> None:
    hidden = sorted(emulator_files(json.loads(MANIFEST.read_text())))
    assert any(name.startswith("assets/emulate-") for name in hidden)
    for on in (False, True):
        live = start_server(tmp_path / str(on), xr_emulator=on)
        try:
            with live.client() as client:
                page = client.get(DISPLAY, params={"xr-emulate": "1"})
                boot = json.loads(re.search(BOOT, page.text, re.S).group(1))
                # The page's own entry, which the emulator imports too, is always served.
                script = re.search(r'<script type="module" src="([^"]+)"', page.text).group(1)
                served = client.get(script).status_code
                codes = {client.get(f"/client/{name}").status_code for name in hidden}
        finally:
            live.stop()
        assert page.status_code == 200 and served == 200
        assert boot.get("xr_emulator", False) is on
        assert not any(name in page.text for name in hidden)
        assert codes == ({200} if on else {404}), (on, codes)
