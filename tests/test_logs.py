"""JSON log lines (#27): `holobazaar serve` with HOLOBAZAAR_LOG_FORMAT=json writes every
record to stderr as one JSON object per line; each request is one line with its request
id, route, status, duration, caller and market. Plain text stays the default."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from holobazaar import logs

from support.demo import DEMO_MARKET
from support.processes import ServeProcess, api_token, serve
from support.streamclient import StreamClient


@contextlib.contextmanager
def served(tmp: Path, env: dict[str, str]) -> Iterator[ServeProcess]:
    """`holobazaar serve` with its stderr in `log_path` (stdout apart)."""
    with serve(tmp, env=env, name="stderr", stdout_path=tmp / "stdout.log") as server:
        yield server


def test_json_logs_one_object_per_line_with_request_fields(tmp_path):
    with served(tmp_path, {"HOLOBAZAAR_LOG_FORMAT": "json"}) as server:
        url, err_path = server.url, server.log_path
        token = api_token(server.database_url, "log-shipper", ["admin"])
        with httpx.Client(base_url=url, timeout=10) as http:
            http.get("/healthz", headers={"x-request-id": "edge-1"})
            http.get(f"/api/v1/markets/{DEMO_MARKET}/displays")
            http.get("/api/v1/markets/nowhere/displays")
            http.get(f"/api/v1/reconcile/{DEMO_MARKET}/held",
                     headers={"Authorization": f"Bearer {token}"})
            http.get(f"/api/v1/reconcile/{DEMO_MARKET}/mismatches")  # anonymous: 401

        async def stream() -> None:
            client = StreamClient(url.replace("http", "ws") + "/ws")
            await client.connect()
            await client.send("not json")
            await client.next("error")
            await client.ws.close()

        asyncio.run(stream())
        time.sleep(0.3)
    text = err_path.read_text()
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines, "no log lines"
    records = []
    for line in lines:
        record = json.loads(line)  # every line is one JSON object
        assert isinstance(record, dict), line
        assert {"time", "level", "logger", "message"} <= set(record), line
        records.append(record)
    requests = [r for r in records if r["logger"] == "holobazaar.request"]
    by_path = {(r["method"], r["path"]): r for r in requests}

    health = by_path[("GET", "/healthz")]
    assert health["request_id"] == "edge-1" and health["status"] == 200
    assert health["route"] == "/healthz" and isinstance(health["duration_ms"], float)

    displays = by_path[("GET", f"/api/v1/markets/{DEMO_MARKET}/displays")]
    assert displays["status"] == 200 and displays["market"] == DEMO_MARKET
    assert displays["route"] == "/api/v1/markets/{market}/displays"
    assert len(displays["request_id"]) == 16 and "user" not in displays

    assert by_path[("GET", "/api/v1/markets/nowhere/displays")]["status"] == 404
    holds = by_path[("GET", f"/api/v1/reconcile/{DEMO_MARKET}/held")]
    assert holds["status"] == 200 and holds["user"] == "token:log-shipper"
    assert by_path[("GET", f"/api/v1/reconcile/{DEMO_MARKET}/mismatches")]["status"] == 401
    # Other records are JSON too: uvicorn's startup lines among them.
    assert any(r["logger"].startswith("uvicorn") for r in records)
    assert all(r["level"] in {"debug", "info", "warning", "error", "critical"}
               for r in records)


def test_text_logs_stay_the_default(tmp_path):
    with served(tmp_path, {}) as server:
        err_path = server.log_path
        httpx.get(f"{server.url}/healthz", timeout=10)
        time.sleep(0.3)
    lines = [line for line in err_path.read_text().splitlines() if line.strip()]
    assert lines
    for line in lines:
        with contextlib.suppress(json.JSONDecodeError):
            assert not isinstance(json.loads(line), dict), line


def test_formatter_keeps_a_traceback_and_newlines_on_one_line():
    formatter = logs.JsonFormatter()
    try:
        raise ValueError("two\nlines")
    except ValueError:
        record = logging.LogRecord("holobazaar.x", logging.ERROR, __file__, 1, "bad %s",
                                   ("thing\nhere",), sys.exc_info())
    record.request_id = "r1"
    line = formatter.format(record)
    assert "\n" not in line
    parsed = json.loads(line)
    assert parsed["message"] == "bad thing\nhere" and parsed["request_id"] == "r1"
    assert "ValueError: two" in parsed["traceback"]
