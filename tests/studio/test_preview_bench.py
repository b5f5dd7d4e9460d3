"""The studio preview benchmark's harness works (#18): on the studio fixtures' server, 20
edits posted to the preview API each reach a WebSocket subscribed to the preview channel.
Figures are the benchmark's business (bench/studio_preview.py): no timing assertion."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import studio_preview  # bench/ is not a package: on the path above


def test_every_preview_edit_reaches_the_preview_channel(server, accounts) -> None:
    token = accounts.token(["curator"], [studio_preview.MARKET])
    latencies = asyncio.run(studio_preview.run(server.url, token, 20))
    assert len(latencies) == 20 and all(ms > 0 for ms in latencies)
