"""The fan-out benchmark's TLS scenario works end to end (issue #26): `holobazaar serve`
with a local CA's certificate and the Node `ws` peer on https.createServer with the same
certificate, clients over wss:// trusting that CA; every client ends holding the
server's final state. Figures are the benchmark's business (no timing assertions)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from support.processes import require_node_peer

REPO = Path(__file__).resolve().parents[1]


def test_fanout_tls_smoke_delivers_every_change_over_wss(tmp_path: Path) -> None:
    require_node_peer()
    out = tmp_path / "fanout-tls.json"
    clients, rate, seconds = 10, 10, 1
    run = subprocess.run(
        [sys.executable, str(REPO / "bench" / "fanout.py"), "--quick", "--no-pin",
         "--scenarios", "tls", "--clients", str(clients), "--seconds", str(seconds),
         "--drain", "10", "--out", str(out)],
        capture_output=True, text=True, timeout=240, cwd=REPO)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    rows = json.loads(out.read_text())["scenarios"]["tls"]
    assert {r["target"] for r in rows} == {"holobazaar", "peer"}
    for row in rows:
        assert row["tls"] and row["ready"] == clients
        assert row["delivered"] == clients * rate * seconds and row["missing"] == 0, row
        assert row["final_state_equal"] == clients, row
        assert row["loadgen_stats"]["errors"] == 0, row["error_codes"]
    assert "holobazaar / peer over TLS" in run.stdout
