"""Witnessing: a second server instance polls the first one's signed heads, keeps them, and
catches a history rewritten (re-hashed) or truncated afterwards; `audit verify --witness`
uses the copies it kept. Bad input from a witnessed server (time-outs, garbage, forged or
replayed heads) is reported and nothing is stored."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from holobazaar.cli import app
from holobazaar.db import session_scope

from .conftest import MARKET, apply, get
from .tamper import rehash_public, truncate
from support.live import LiveServer, start_server

runner = CliRunner()


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[LiveServer, LiveServer]]:
    """(the witnessed server, the witness)."""
    witnessed = start_server(tmp_path / "a", watch=False)
    witness = start_server(tmp_path / "w", watch=False, witness_timeout=1.0)
    yield witnessed, witness
    witness.stop()
    witnessed.stop()


def add(witness: LiveServer, url: str, *extra: str):
    return runner.invoke(app, ["witness", "add", url, *extra, "--data-dir",
                               str(witness.settings.data_dir)])


def poll(witness: LiveServer) -> list:
    return witness.call(witness.app.state.services.witness.poll_all)  # type: ignore[attr-defined]


def listing(witness: LiveServer) -> list[dict]:
    response = get(witness, "/api/v1/witness")
    assert response.status_code == 200
    return response.json()["witnesses"]


def kept(witness: LiveServer) -> int:
    return sum(m["heads_seen"] for w in listing(witness) for m in w["markets"])


def test_a_witness_keeps_heads_and_catches_a_rewritten_history(pair, caplog) -> None:
    witnessed, witness = pair
    apply(witnessed, {"sku": "TOM-BRANDY", "price": "6.30"})
    added = add(witness, witnessed.url)
    assert added.exit_code == 0, added.output
    assert [o.status for o in poll(witness)] == ["ok"]
    [entry] = listing(witness)
    assert entry["url"] == witnessed.url and entry["status"] == "ok"
    [market] = entry["markets"]
    head = get(witnessed, f"/api/v1/markets/{MARKET}/audit/head").json()
    assert market["market"] == MARKET and market["head"]["hash"] == head["hash"]
    assert poll(witness)[0].status == "ok" and kept(witness) == 1  # nothing new: not kept
    apply(witnessed, {"sku": "TOM-BRANDY", "price": "6.20"})
    assert poll(witness)[0].status == "ok" and kept(witness) == 2
    recent = listing(witness)[0]["markets"][0]["recent"]
    assert [h["height"] for h in recent] == [head["height"] + 1, head["height"]]
    # The witnessed server's own check agrees with the witness's copies.
    agree = runner.invoke(app, ["audit", "verify", "--data-dir",
                                str(witnessed.settings.data_dir), "--witness", witness.url])
    assert agree.exit_code == 0, agree.output
    assert "1 witness(es) agree" in agree.stdout

    # The operator rewrites an old price and re-hashes everything after it.
    records = get(witnessed, f"/api/v1/markets/{MARKET}/audit/records").json()["records"]
    tomato = [r for r in records if r["sku"] == "TOM-BRANDY"][1]
    rehash_public(witnessed.app.state.services.engine, MARKET, tomato["seq"], "1.00")
    with caplog.at_level(logging.WARNING, logger="holobazaar.audit.witness"):
        outcome = poll(witness)[0]
    assert outcome.status == "inconsistent" and "rewritten" in outcome.problem
    assert any("INCONSISTENT" in r.getMessage() for r in caplog.records)
    [entry] = listing(witness)
    assert entry["status"] == "inconsistent" and "rewritten" in entry["problem"]
    assert kept(witness) == 2  # the rewritten head was not kept
    metrics = get(witness, "/metrics").text
    assert (f'holobazaar_witness_status{{status="inconsistent",url="{witnessed.url}"}} 1.0'
            in metrics)
    assert get(witness, "/healthz").status_code == 200
    # Covering tracks (the server's own signed heads deleted) does not help: the
    # witness's copies still say what the history was.
    with session_scope(witnessed.app.state.services.engine) as session:  # type: ignore[attr-defined]
        session.execute(text("DELETE FROM audit_signed_head"))
    caught = runner.invoke(app, ["audit", "verify", "--data-dir",
                                 str(witnessed.settings.data_dir), "--witness", witness.url])
    assert caught.exit_code == 1
    assert f"witness {witness.url} kept" in caught.stderr and "rewritten" in caught.stderr


def test_a_witness_catches_a_truncated_history(pair) -> None:
    witnessed, witness = pair
    for price in ("6.30", "6.20", "6.10"):
        apply(witnessed, {"sku": "TOM-BRANDY", "price": price})
    assert add(witness, witnessed.url).exit_code == 0
    assert poll(witness)[0].status == "ok"
    truncate(witnessed.app.state.services.engine, 2)
    # While its own last signed head remembers the longer chain, the server refuses to
    # sign: the witness reports it (and keeps nothing).
    refused = poll(witness)[0]
    assert refused.status == "invalid" and "HTTP 503" in refused.problem
    with session_scope(witnessed.app.state.services.engine) as session:  # type: ignore[attr-defined]
        session.execute(text("DELETE FROM audit_signed_head"))
    outcome = poll(witness)[0]
    assert outcome.status == "inconsistent"
    assert "below the height" in outcome.problem and "truncated" in outcome.problem
    assert kept(witness) == 1


class Fake:
    """A witnessed server gone bad: answers from the real one, altered by `mode`."""

    def __init__(self, real: LiveServer) -> None:
        self.real, self.mode, self.saved = real, "proxy", None
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                body = fake.answer(self.path)
                if body is None:
                    time.sleep(3)  # longer than the witness's 1 s time-out
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def answer(self, path: str) -> bytes | None:
        real = httpx.get(self.real.url + path, timeout=5).content
        if path != "/api/v1/audit/heads" or self.mode == "proxy":
            return real
        if self.mode == "hang":
            return None
        if self.mode == "garbage":
            return b"<html>we moved</html>"
        heads = json.loads(real)
        if self.mode == "forge":
            heads["heads"][0]["height"] += 1  # a claim its signature does not cover
        elif self.mode == "replay":
            heads = self.saved
        return json.dumps(heads).encode()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_bad_answers_from_a_witnessed_server_are_reported_and_nothing_is_stored(pair) -> None:
    witnessed, witness = pair
    fake = Fake(witnessed)
    try:
        apply(witnessed, {"sku": "TOM-BRANDY", "price": "6.30"})
        assert add(witness, fake.url).exit_code == 0
        assert poll(witness)[0].status == "ok"
        fake.saved = get(witnessed, "/api/v1/audit/heads").json()  # an old signed head
        apply(witnessed, {"sku": "TOM-BRANDY", "price": "6.20"})
        assert poll(witness)[0].status == "ok" and kept(witness) == 2
        expected = {"hang": ("unreachable", "timed out"),
                    "garbage": ("invalid", "did not answer JSON"),
                    "forge": ("invalid", "signature does not verify"),
                    "replay": ("inconsistent", "an old head replayed")}
        for mode, (status, words) in expected.items():
            fake.mode = mode
            outcome = poll(witness)[0]
            assert (outcome.status, words in (outcome.problem or "")) == (status, True), \
                (mode, outcome)
            assert kept(witness) == 2, mode
            assert get(witness, "/healthz").status_code == 200
    finally:
        fake.close()
    # `witness add` refuses what is not a server's address, and one that does not answer.
    bad = add(witness, "ftp://example.org")
    assert bad.exit_code == 2 and "http:// or https://" in bad.output
    gone = add(witness, "http://127.0.0.1:9")
    assert gone.exit_code == 1 and "not added" in gone.stderr
    assert [w["url"] for w in listing(witness)] == [fake.url]


def test_the_duty_polls_and_signs_on_its_own_every_interval(tmp_path: Path) -> None:
    """Under its lease, every HOLOBAZAAR_WITNESS_INTERVAL seconds: this server's heads are
    signed (no request needed) and witnessed servers are polled."""
    witnessed = start_server(tmp_path / "a", watch=False, witness_interval=1.0)
    witness = start_server(tmp_path / "w", watch=False, witness_interval=1.0)
    try:
        assert add(witness, witnessed.url, "--no-check").exit_code == 0
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not (
                listing(witness)[0]["status"] == "ok" and kept(witness) == 1):
            time.sleep(0.2)
        assert listing(witness)[0]["status"] == "ok" and kept(witness) == 1
        with session_scope(witnessed.app.state.services.engine) as session:  # type: ignore[attr-defined]
            signed = session.execute(text("SELECT count(*) FROM audit_signed_head")).scalar()
        assert signed >= 1
    finally:
        witness.stop()
        witnessed.stop()
