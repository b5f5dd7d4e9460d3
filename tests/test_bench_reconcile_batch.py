"""The feed-batch benchmark (bench/reconcile.py, issue #26) works end to end in its smoke
mode: a generated market, one signed batch, clients of bench/node/crowd.js on its
displays; every affected client holds every change of the batch and ends holding the
server's state (no timing assertions: figures are the bench's)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from support.processes import require_node_peer

REPO = Path(__file__).resolve().parents[1]


def test_feed_batch_smoke_reaches_every_affected_client(tmp_path: Path) -> None:
    require_node_peer()
    out = tmp_path / "batch.json"
    run = subprocess.run(
        [sys.executable, str(REPO / "bench" / "reconcile.py"), "--smoke", "--spread", "affected",
         "--out", str(out)], capture_output=True, text=True, timeout=240, cwd=REPO)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    row = json.loads(out.read_text())
    assert row["clients"] == 60 and row["applied"] == row["changes"] == 50
    assert row["held"] == 0 and row["error_codes"] == {}
    # Clients only on the displays the batch changes: every client is affected.
    assert row["watched_displays"] == row["affected_displays"] > 0
    # Each (client, change) of a changed display the client watches: held, none missing.
    assert row["samples"] > 0 and row["missing"] == 0
    assert row["final_state_equal"] == row["final_state_compared"] >= row["clients"]
    assert row["p50_ms"] <= row["p99_ms"] <= row["max_ms"] < 30_000
    assert "from the 2xx to each affected client" in run.stdout
