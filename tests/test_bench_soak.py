"""The soak test's harness works end to end (issue #27): a short `bench/soak.py --smoke`
against a real `holobazaar serve` brings every kind of traffic of a market day, checks every
acknowledged change in the final state and the histories, and exits 0. Figures are the
soak's business (docs/deploy.md, "Soak test"); this only checks that it measures and
checks what it says. The growth rule is checked on made-up samples."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from soak import growth  # noqa: E402


def test_soak_smoke_run_brings_a_market_day_and_loses_nothing(tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    run = subprocess.run(
        [sys.executable, str(REPO / "bench" / "soak.py"), "--smoke", "--minutes", "0.5",
         "--visitors", "20", "--stay", "6", "--interval", "10", "--out", str(out)],
        capture_output=True, text=True, timeout=240, cwd=REPO)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-3000:]
    figures = json.loads(out.read_text())
    assert figures["failures"] == []
    counts = figures["counts"]
    for kind in ("visits", "reactions", "feed batches", "manual edits", "show GOs", "drills",
                 "page views", "uploads ready"):
        assert counts.get(kind, 0) >= 1, (kind, counts)
    assert counts["watchers equal to a fresh snapshot"] == 4
    assert counts["acknowledged changes"] > 0
    assert counts["acknowledged changes found in histories"] == counts["acknowledged changes"]
    # One field per manual edit: each acknowledged one is an entry of the audit log.
    assert figures["manual_changes_in_audit"] == counts["manual edits"]
    assert "ok:" in figures["audit_verify"]
    assert not any(status.split()[-1].startswith("5") for status in figures["statuses"])
    # Figures every interval: RSS, descriptors and tasks of the node, latencies.
    samples = figures["samples"]
    assert samples[0]["label"] == "start" and samples[-1]["label"] == "quiet"
    assert len(samples) >= 4
    for sample in samples:
        node = sample["nodes"]["node0"]
        assert node["rss_mb"] > 0 and node["fds"] > 0 and node["tasks"] > 0
    assert figures["latency_ms"]["feed batch"]["p50"] > 0
    assert "node0:" in run.stdout and "OK:" in run.stdout


def _samples(values: list[float]) -> list[dict]:
    return [{"t_s": 60 * i, "nodes": {"n": {"rss_mb": v, "fds": 50, "tasks": 20}}}
            for i, v in enumerate(values)]


def test_growth_that_levels_off_passes_and_steady_growth_fails() -> None:
    warming = [100 + 30 * (1 - 0.6 ** i) for i in range(15)]  # grows, then flat
    figures, failures = growth(_samples(warming), "n")
    assert failures == [], failures
    assert figures["rss_mb"]["first_third_per_min"] > figures["rss_mb"]["last_third_per_min"]
    leaking = [100 + 2 * i for i in range(15)]  # 2 MB a minute, all day
    _, failures = growth(_samples(leaking), "n")
    assert len(failures) == 1 and "rss_mb still growing" in failures[0]
    _, failures = growth(_samples(leaking[:4]), "n")  # too short to judge
    assert failures == []
