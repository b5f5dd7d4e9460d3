"""The fan-out benchmark's harness works end to end (issue #10): its smoke mode drives a
real `holobazaar serve` and the Node `ws` peer with the Node load generator, and every
client ends holding the server's final state. Figures are the benchmark's business; this
only checks that the harness measures what it says (no timing assertions)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from support.processes import require_node_peer

REPO = Path(__file__).resolve().parents[1]


def test_fanout_quick_run_delivers_every_change_to_every_client(tmp_path: Path) -> None:
    require_node_peer()
    out = tmp_path / "fanout.json"
    clients, rate, seconds = 20, 10, 1
    run = subprocess.run(
        [sys.executable, str(REPO / "bench" / "fanout.py"), "--quick", "--no-pin",
         "--clients", str(clients), "--seconds", str(seconds), "--drain", "10",
         "--out", str(out)],
        capture_output=True, text=True, timeout=240, cwd=REPO)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    rows = json.loads(out.read_text())["scenarios"]["standard"]
    assert {r["target"] for r in rows} == {"holobazaar", "peer"}
    for row in rows:
        changes = rate * seconds
        assert row["ready"] == clients
        assert row["changes"] == changes
        assert row["delivered"] == clients * changes and row["missing"] == 0, row
        # Each client applied every patch itself and holds what a fresh snapshot holds.
        assert row["final_state_equal"] == clients, row
        assert row["loadgen_stats"]["apply_failures"] == 0
        assert row["loadgen_stats"]["errors"] == 0, row["error_codes"]
        assert row["p50_ms"] is not None and row["p50_ms"] <= row["p99_ms"] <= row["max_ms"]
        assert row["server_cpu_s"] > 0 and row["rss_max_mb"] > 0
    assert "holobazaar / peer" in run.stdout
