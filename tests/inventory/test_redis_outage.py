"""While Redis (the broker) is unreachable, a feed batch and a manual change are still
committed and answered (not a 500), the displays show them once Redis is back, and what
cannot be done without the broker (a show cue) answers 503 with Retry-After (found by
bench/soak.py --nodes 2: POST /api/v1/inventory/<m>/events answered 500 during its Redis
restart, with a traceback in the log)."""

from __future__ import annotations

import secrets
import shutil
import time
from pathlib import Path

import pytest

from .conftest import MARKET, display_state, start_inventory_server
from support.databases import PrivateRedis

DISPLAY = "zonneveld-greens"
SKU = "TOM-CHEROKEE"


def _wait_for_price(live, price: str, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    item: dict = {}
    while time.monotonic() < deadline:
        item = display_state(live, DISPLAY)["items"].get(SKU, {})
        if item.get("price") == price:
            return item
        time.sleep(0.2)
    raise AssertionError(f"the display still shows {item.get('price')!r}, not {price!r}")


def test_changes_during_a_redis_outage_are_committed_and_shown_after(tmp_path: Path,
                                                                   caplog) -> None:
    if shutil.which("redis-server") is None:
        pytest.skip("needs redis-server on PATH")
    redis = PrivateRedis(tmp_path)  # never the machine's shared Redis: it is stopped mid-test
    redis.start()
    try:
        live, feed = start_inventory_server(tmp_path, broker_url=redis.url,
                                            redis_prefix=f"hb-test-{secrets.token_hex(4)}:")
        try:
            feed.push({"sku": SKU, "price": "4.10"})
            _wait_for_price(live, "4.10")
            redis.stop(5)
            pushed = feed.post(b'{"events": [{"sku": "TOM-CHEROKEE", "price": "4.20"}]}')
            assert pushed.status_code == 200, pushed.text
            assert pushed.json()["applied"] == 1
            with live.client() as http:
                edited = http.patch(f"/api/v1/markets/{MARKET}/items/{SKU}",
                                    json={"price": "4.30"}, headers=live.write_headers)
            assert edited.status_code == 200, edited.text
            with live.client() as http:  # nothing committed to say: retry later
                show = "/api/v1/shows/greenhaven/harvest-collective"
                http.post(f"{show}/standby", json={"number": "1"}, headers=live.write_headers)
                cue = http.post(f"{show}/go", headers=live.write_headers)
            assert cue.status_code == 503 and cue.headers["retry-after"] == "5", cue.text
            redis.start()
            _wait_for_price(live, "4.30")
        finally:
            live.stop()
    finally:
        redis.stop()
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert not tracebacks, [r.getMessage() for r in tracebacks]
