"""The pull feed against a real HTTP source on loopback: ETag / If-None-Match, a full
snapshot with the disappear rule, and a source that fails or returns garbage."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .conftest import MARKET, display_state, get
from support.waiting import wait_for

ZONNEVELD = "zonneveld-greens"


class Source:
    """A stock system's export: serves `body` with an ETag; records conditional requests."""

    def __init__(self) -> None:
        self.body = b"[]"
        self.status = 200
        self.requests: list[dict] = []
        source = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                etag = f'"{hash(source.body) & 0xFFFFFFFF:x}"'
                source.requests.append({"if_none_match": self.headers.get("If-None-Match")})
                if source.status != 200:
                    self.send_response(source.status)
                    self.end_headers()
                    return
                if self.headers.get("If-None-Match") == etag:
                    self.send_response(304)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("ETag", etag)
                self.send_header("Content-Length", str(len(source.body)))
                self.end_headers()
                self.wfile.write(source.body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/stock"

    def close(self) -> None:
        self.server.shutdown()


def _configure(live, source: Source, fmt: str = "json", disappear: str = "sold_out") -> None:
    with live.client() as client:
        response = client.put(f"/api/v1/inventory/{MARKET}/feed", headers=live.write_headers,
                              json={"pull_url": source.url, "pull_format": fmt,
                                    "pull_interval": 1, "disappear": disappear})
    assert response.status_code == 200, response.text


def _items(live) -> list[dict]:
    with live.client() as client:
        return client.get(f"/api/v1/markets/{MARKET}/items").json()


def test_pull_snapshot_with_etag_and_disappear_rule(inv) -> None:
    live, _ = inv
    source = Source()
    try:
        rows = [{"sku": i["sku"], "price": i["price"]} for i in _items(live)
                if i["sku"] != "CAR-NANTES"]
        for row in rows:
            if row["sku"] == "TOM-BRANDY":
                row["price"] = "6.90"
        source.body = json.dumps(rows).encode()
        _configure(live, source)
        wait_for(lambda: display_state(live, ZONNEVELD)["items"]["TOM-BRANDY"]["price"]
                 == "6.90")
        assert display_state(live, ZONNEVELD)["items"]["CAR-NANTES"]["status"] == "sold_out"
        # Unchanged source: the next poll is conditional and answered 304.
        wait_for(lambda: any(r["if_none_match"] for r in source.requests), timeout=5)
        assert get(live, f"/api/v1/inventory/{MARKET}/feed").json()["pull_url"] == source.url
    finally:
        source.close()


def test_pull_csv_and_failures_keep_the_previous_truth(inv) -> None:
    live, _ = inv
    source = Source()
    try:
        source.body = b"sku,price\nTOM-BRANDY,6.70\nKAL-NERO,NaN\n"
        _configure(live, source, fmt="csv", disappear="keep")
        wait_for(lambda: display_state(live, ZONNEVELD)["items"]["TOM-BRANDY"]["price"]
                 == "6.70")
        assert display_state(live, ZONNEVELD)["items"]["KAL-NERO"]["price"] == "3.20"
        failures = live.app.state.services.reconciler.counts["feed_failures"]
        source.body = b"<html>garbage</html>"
        wait_for(lambda: live.app.state.services.reconciler.counts["feed_failures"] > failures)
        source.status = 500
        wait_for(lambda: live.app.state.services.reconciler.counts["feed_failures"] > failures + 1,
                 timeout=6)
        assert display_state(live, ZONNEVELD)["items"]["TOM-BRANDY"]["price"] == "6.70"
        with live.client() as client:
            metrics = client.get("/metrics").text
        assert 'holobazaar_reconcile_total{counter="feed_failures"}' in metrics
    finally:
        source.close()


def test_feed_settings_are_validated_and_admin_only(inv) -> None:
    live, _ = inv
    with live.client() as client:
        anonymous = client.put(f"/api/v1/inventory/{MARKET}/feed", json={})
        bad = client.put(f"/api/v1/inventory/{MARKET}/feed", headers=live.write_headers,
                         json={"pull_url": "ftp://x", "disappear": "explode"})
    assert anonymous.status_code == 401
    assert bad.status_code == 422
