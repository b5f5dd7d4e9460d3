"""The phone AR benchmark's harness works (#22): `bench/assets.py --quicklook --smoke`
drives a real `holobazaar serve`, times one demo display's USDZ (made, then from the
cache) and sets it against the display's GLB. Figures are the benchmark's business; this
checks that it measures what it says (no timing assertions)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_quicklook_bench_smoke(tmp_path: Path) -> None:
    out = tmp_path / "quicklook.json"
    run = subprocess.run([sys.executable, str(REPO / "bench" / "assets.py"), "--quicklook",
                          "--smoke", "--out", str(out)],
                         capture_output=True, text=True, timeout=240, cwd=REPO)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    result = json.loads(out.read_text())
    [row] = result["rows"]
    assert row["display"] == "zonneveld-greens" and result["requests"] == 20
    assert row["usdz_bytes"] > 0 and row["glb_bytes"] > 0 and row["model_bytes"] > 0
    assert row["server_ms"] > 0 and 0 < row["cached_p50_ms"] <= row["cached_p95_ms"]
    assert row["ratio"] == round(row["usdz_bytes"] / row["glb_bytes"], 2)
    assert "goal < 1000" in run.stdout and "goal <= 1.5" in run.stdout
