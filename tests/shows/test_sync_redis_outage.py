"""While Redis is unreachable (a restart), /metrics and the performer console's show state
still answer: the cue-sync spread kept in Redis is left out, not a 500 (found by
bench/soak.py --nodes 2: GET /metrics answered 500 during its Redis restart)."""

from __future__ import annotations

import contextlib
import secrets
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import redis

from support import free_port, start_server

BASE = "/api/v1/shows/greenhaven/harvest-collective"


@contextlib.contextmanager
def private_redis():
    """A redis-server of this test's own (never the machine's shared one): it is stopped
    mid-test."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("needs redis-server on PATH")
    port = free_port()
    process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save",
                                "", "--appendonly", "no"], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(redis.RedisError):
                if redis.Redis(port=port, socket_timeout=1).ping():
                    break
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)
        yield process, f"redis://127.0.0.1:{port}/0"
    finally:
        process.kill()
        process.wait(5)


def test_metrics_and_show_state_answer_while_redis_is_down(tmp_path: Path) -> None:
    with private_redis() as (process, url):
        live = start_server(tmp_path, broker_url=url,
                            redis_prefix=f"hb-test-{secrets.token_hex(4)}:")
        try:
            with live.client() as http:
                headers = live.write_headers
                assert http.post(f"{BASE}/standby", json={"number": "1"},
                                 headers=headers).status_code == 200
                assert http.post(f"{BASE}/go", headers=headers).status_code == 200
                assert http.get("/metrics").status_code == 200
                process.terminate()
                process.wait(5)
                metrics = http.get("/metrics")
                assert metrics.status_code == 200, metrics.text
                assert "holobazaar_asyncio_tasks " in metrics.text
                state = http.get(BASE, headers=headers)
                assert state.status_code == 200, state.text
                assert state.json()["sync"] is None  # unknown while Redis is away
        finally:
            live.stop()
