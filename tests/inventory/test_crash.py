"""A crash at any point after a 2xx loses nothing: the server runs as its own process,
is SIGKILLed while batches stream in, and after a restart every acknowledged batch is
there."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx
from sqlmodel import select

from holobazaar import db
from holobazaar.db import session_scope
from holobazaar.inventory.feeds import sign
from holobazaar.inventory.tables import FeedBatch

from support.content import copy_content
from support.net import free_port

SKUS = ["TOM-BRANDY", "CAR-NANTES", "KAL-NERO", "LET-BUTTER", "APL-ELSTAR", "BRD-RYE"]


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "holobazaar", *args], capture_output=True,
                          text=True, timeout=60, check=True)


def _serve(data: Path, content: Path, port: int) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-m", "holobazaar", "serve", "--data-dir", str(data), "--content",
         str(content), "--port", str(port), "--no-watch", "--log-level", "warning"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    process.kill()
    raise RuntimeError("server did not start")


def test_sigkill_mid_stream_loses_no_acknowledged_batch(tmp_path: Path) -> None:
    content = copy_content(tmp_path / "content")
    data = tmp_path / "var"
    secret = _cli("inventory", "secret", "--market", "greenhaven", "--data-dir",
                  str(data)).stdout.strip()
    assert secret.startswith("hbs_")
    port = free_port()
    server = _serve(data, content, port)
    acked: list[tuple[str, int]] = []  # (idempotency key, version)
    stop = threading.Event()

    def stream() -> None:
        url = f"http://127.0.0.1:{port}/api/v1/inventory/greenhaven/events"
        with httpx.Client(timeout=5) as client:
            version = 0
            while not stop.is_set():
                version += 1
                body = json.dumps({"events": [
                    {"sku": sku, "stock": version, "source_version": version}
                    for sku in SKUS[version % 3::3]]}).encode()
                ts = str(int(time.time()))
                key = uuid.uuid4().hex
                try:
                    response = client.post(url, content=body, headers={
                        "X-Holobazaar-Timestamp": ts, "Idempotency-Key": key,
                        "X-Holobazaar-Signature": sign(secret, ts, key, body)})
                except httpx.HTTPError:
                    return  # the server died mid-request: not acknowledged
                if response.status_code == 200:
                    acked.append((key, version))

    pusher = threading.Thread(target=stream)
    pusher.start()
    try:
        deadline = time.monotonic() + 20
        while len(acked) < 25 and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(server.pid, signal.SIGKILL)
        server.wait(10)
    finally:
        stop.set()
        pusher.join(10)
        if server.poll() is None:
            server.kill()
    assert len(acked) >= 25
    restarted = _serve(data, content, port)
    try:
        items = {i["sku"]: i for i in httpx.get(
            f"http://127.0.0.1:{port}/api/v1/markets/greenhaven/items").json()}
        engine = db.make_engine(f"sqlite:///{data / 'holobazaar.db'}")
        with session_scope(engine) as session:
            keys = {b.idempotency_key for b in session.exec(select(FeedBatch))}
        engine.dispose()
    finally:
        restarted.send_signal(signal.SIGTERM)
        restarted.wait(10)
    missing = [key for key, _ in acked if key not in keys]
    assert not missing, f"{len(missing)} acknowledged batches lost"
    last = acked[-1][1]
    for offset in range(3):
        version = last - offset
        for sku in SKUS[version % 3::3]:
            assert items[sku]["stock"] >= version, (sku, items[sku]["stock"], version)
