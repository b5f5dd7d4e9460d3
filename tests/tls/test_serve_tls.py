"""`holobazaar serve --tls` as an operator runs it (a subprocess on a free loopback port):
HTTPS and WSS work for a client that trusts the generated CA and fail for one that does
not; the plain-HTTP trust port hands out the CA; bad certificate files stop the start."""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets

from holobazaar.tls.certificates import fingerprint

from support.markets import MARKET, write_small_market
from support.net import free_port
from support.processes import status_kb


def trusting(ca: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca))


def serve_command(data_dir: Path, content: Path, port: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "holobazaar", "serve", "--tls", "--port", str(port),
            "--data-dir", str(data_dir), "--content", str(content), "--no-watch",
            "--log-level", "warning", *extra]


class Served:
    def __init__(self, process: subprocess.Popen, port: int, http_port: int, data: Path,
                 log: Path) -> None:
        self.process, self.port, self.http_port, self.data, self.log = (
            process, port, http_port, data, log)

    @property
    def ca(self) -> Path:
        return self.data / "tls" / "ca.pem"


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("tls-serve")
    content = write_small_market(tmp / "content", displays=2)
    port, http_port = free_port(), free_port()
    log = tmp / "serve.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            serve_command(tmp / "var", content, port, "--http-port", str(http_port)),
            stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{http_port}/tls", timeout=1)
            httpx.get(f"https://localhost:{port}/healthz",
                      verify=trusting(tmp / "var/tls/ca.pem"), timeout=1)
            break
        except (httpx.HTTPError, OSError):
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"serve --tls did not start:\n{log.read_text()}")
            time.sleep(0.1)
    yield Served(process, port, http_port, tmp / "var", log)
    process.terminate()
    process.wait(10)


def test_https_works_when_the_ca_is_trusted(served: Served) -> None:
    response = httpx.get(f"https://localhost:{served.port}/healthz", verify=trusting(served.ca))
    assert response.status_code == 200
    assert response.json()["markets"] == [MARKET]
    # The certificate covers the loopback address too, not only the name.
    assert httpx.get(f"https://127.0.0.1:{served.port}/healthz",
                     verify=trusting(served.ca)).status_code == 200


def test_https_fails_without_trusting_the_ca(served: Served) -> None:
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"https://localhost:{served.port}/healthz")  # system trust store only


async def _hello(url: str, context: ssl.SSLContext) -> tuple[dict, dict]:
    async with websockets.connect(url, ssl=context, open_timeout=10) as ws:
        welcome = json.loads(await asyncio.wait_for(ws.recv(), 10))
        await ws.send(json.dumps({"type": "hello", "protocol": 1,
                                  "subscribe": [{"channel": f"market/{MARKET}"}]}))
        snapshot = json.loads(await asyncio.wait_for(ws.recv(), 10))
    return welcome, snapshot


def test_wss_hello_gets_welcome_and_snapshot_when_trusted(served: Served) -> None:
    welcome, snapshot = asyncio.run(_hello(f"wss://localhost:{served.port}/ws",
                                           trusting(served.ca)))
    assert welcome["type"] == "welcome" and welcome["protocol"] == 1
    assert snapshot["type"] == "snapshot" and snapshot["channel"] == f"market/{MARKET}"
    assert snapshot["state"]["market"]["name"] == "Riverside Test Market"


def test_wss_connections_hold_little_memory_each(served: Served) -> None:
    """`serve --tls` runs on the loop `serve` picks (uvloop): asyncio's own loop keeps a
    256 KiB read buffer per TLS connection (10,000 phones held 3 GB; uvloop ~21 KB each)."""
    count = 300

    async def hold_connections() -> tuple[int, int]:
        context = trusting(served.ca)
        before = status_kb(served.process.pid)
        sockets = [await websockets.connect(f"wss://localhost:{served.port}/ws", ssl=context,
                                            open_timeout=10) for _ in range(count)]
        try:
            for ws in sockets:  # every handshake done and every welcome read
                assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "welcome"
            return before, status_kb(served.process.pid)
        finally:
            await asyncio.gather(*(ws.close() for ws in sockets))

    before, after = asyncio.run(hold_connections())
    per_connection = (after - before) / count
    assert per_connection < 100, f"{per_connection:.0f} KB per wss:// connection"


def test_wss_fails_without_trusting_the_ca(served: Served) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        asyncio.run(_hello(f"wss://localhost:{served.port}/ws", ssl.create_default_context()))


def test_trust_port_serves_the_ca_and_instructions_over_plain_http(served: Served) -> None:
    base = f"http://127.0.0.1:{served.http_port}"
    pem = httpx.get(f"{base}/tls/ca.pem")
    assert pem.status_code == 200
    assert pem.headers["content-type"] == "application/x-pem-file"
    assert pem.content == served.ca.read_bytes()
    page = httpx.get(f"{base}/tls")
    assert page.status_code == 200
    from cryptography import x509

    ca = x509.load_pem_x509_certificate(served.ca.read_bytes())
    assert fingerprint(ca) in page.text
    for device in ("Android", "iPhone", "Quest"):
        assert device in page.text
    assert f"https://127.0.0.1:{served.port}/" in page.text
    # Anything else on the plain port goes to the HTTPS site.
    redirect = httpx.get(f"{base}/m/{MARKET}")
    assert redirect.status_code == 307
    assert redirect.headers["location"] == f"https://127.0.0.1:{served.port}/m/{MARKET}"
    # The HTTPS site serves the same CA (for devices that accepted the warning once).
    assert httpx.get(f"https://localhost:{served.port}/tls/ca.pem",
                     verify=trusting(served.ca)).content == pem.content


def test_serve_prints_phone_urls_fingerprint_and_qr(served: Served) -> None:
    text = served.log.read_text()
    assert f"https://localhost:{served.port}/m/{MARKET}" in text
    assert "created a local certificate authority" in text
    assert "SHA-256" in text
    assert "█" in text or "▀" in text, "no terminal QR code"


def _run_serve(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    content = write_small_market(tmp_path / "content", displays=1)
    return subprocess.run(serve_command(tmp_path / "var", content, free_port(), *extra),
                          capture_output=True, text=True, timeout=60)


def test_serve_refuses_a_missing_certificate_file(tmp_path: Path) -> None:
    key = tmp_path / "key.pem"
    key.write_text("x")
    result = _run_serve(tmp_path, "--certfile", str(tmp_path / "missing.pem"),
                        "--keyfile", str(key))
    assert result.returncode == 2
    assert f"{tmp_path / 'missing.pem'}: certificate file does not exist" in result.stderr


def test_serve_refuses_a_key_that_does_not_match(tmp_path: Path, served: Served) -> None:
    # The generated server certificate with the CA's key: both valid, but not a pair.
    result = _run_serve(tmp_path, "--certfile", str(served.data / "tls/server.pem"),
                        "--keyfile", str(served.data / "tls/ca-key.pem"))
    assert result.returncode == 2
    assert "ca-key.pem: key does not match the certificate" in result.stderr


def test_serve_refuses_a_relative_base_url(tmp_path: Path) -> None:
    result = _run_serve(tmp_path, "--base-url", "market.example/path")
    assert result.returncode == 2
    assert "--base-url" in result.stderr and "absolute http" in result.stderr


def test_the_plain_http_side_redirects_only_to_the_servers_names(served: Served) -> None:
    base = f"http://127.0.0.1:{served.http_port}"
    foreign = httpx.get(f"{base}/login", headers={"Host": "evil.example"})
    assert foreign.status_code == 307
    # Not evil.example: the configured public address (serve's default for 127.0.0.1).
    assert foreign.headers["location"] == f"https://localhost:{served.port}/login"
    own = httpx.get(f"{base}/login", headers={"Host": f"localhost:{served.http_port}"})
    assert own.headers["location"] == f"https://localhost:{served.port}/login"
    page = httpx.get(f"{base}/tls", headers={"Host": "evil.example"})
    assert "evil.example" not in page.text


def test_hsts_on_https_responses_only(served: Served) -> None:
    secure = httpx.get(f"https://localhost:{served.port}/healthz", verify=trusting(served.ca))
    assert secure.headers["strict-transport-security"] == "max-age=86400"
    plain = httpx.get(f"http://127.0.0.1:{served.http_port}/tls")
    assert "strict-transport-security" not in plain.headers
