"""While Redis is unreachable (a restart), /metrics and the performer console's show state
still answer: the cue-sync spread kept in Redis is left out, not a 500 (found by
bench/soak.py --nodes 2: GET /metrics answered 500 during its Redis restart)."""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path

import pytest

from support.databases import PrivateRedis
from support.live import start_server

BASE = "/api/v1/shows/greenhaven/harvest-collective"


def test_metrics_and_show_state_answer_while_redis_is_down(tmp_path: Path) -> None:
    if shutil.which("redis-server") is None:
        pytest.skip("needs redis-server on PATH")
    redis = PrivateRedis(tmp_path)  # never the machine's shared Redis: it is stopped mid-test
    redis.start()
    try:
        live = start_server(tmp_path, broker_url=redis.url,
                            redis_prefix=f"hb-test-{secrets.token_hex(4)}:")
        try:
            with live.client() as http:
                headers = live.write_headers
                assert http.post(f"{BASE}/standby", json={"number": "1"},
                                 headers=headers).status_code == 200
                assert http.post(f"{BASE}/go", headers=headers).status_code == 200
                assert http.get("/metrics").status_code == 200
                redis.stop(5)
                metrics = http.get("/metrics")
                assert metrics.status_code == 200, metrics.text
                assert "holobazaar_asyncio_tasks " in metrics.text
                state = http.get(BASE, headers=headers)
                assert state.status_code == 200, state.text
                assert state.json()["sync"] is None  # unknown while Redis is away
        finally:
            live.stop()
    finally:
        redis.stop()
