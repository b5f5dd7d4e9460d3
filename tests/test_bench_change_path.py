"""The change-path profile (issue #26) works end to end: its smoke mode drives a live
server with real token-authenticated price changes and reports CPU per stage. Figures
are the benchmark's business; this checks only that each stage it names was measured
(no timing assertions)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_change_path_smoke_measures_every_stage(tmp_path: Path) -> None:
    out = tmp_path / "change_path.json"
    run = subprocess.run([sys.executable, str(REPO / "bench" / "change_path.py"), "--smoke",
                          "--json", str(out)], capture_output=True, text=True, timeout=120,
                         cwd=REPO)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    result = json.loads(out.read_text())
    stages = {row["stage"]: row for row in result["stages"]}
    for stage in ("request (app, all stages)", "token lookup", "item write + audit",
                  "audit appends (all)", "reconcile + publish", "recompose (incremental)",
                  "hub publish"):
        assert stages[stage]["median_us"] > 0, stage
    # The token write's record goes in the change's transaction, the version with it.
    assert stages["audit: token write"]["median_us"] == 0
    assert stages["version read (before only)"]["median_us"] == 0
    assert result["process_cpu_us_per_change"] > 0
    assert "server process CPU per change" in run.stdout
