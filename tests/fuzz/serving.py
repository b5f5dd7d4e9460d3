"""`holobazaar serve` as its own process on a loopback port, over a fresh
data folder and a copy of the demo content, with its log (stdout + stderr) in a file the
tests read for tracebacks."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from support import copy_content, free_port

# What a traceback or an unhandled error leaves in the server's log.
TRACE_MARKERS = ("Traceback (most recent call last)", "Fatal error on transport",
                 "Exception in ASGI application", "Task exception was never retrieved",
                 "Exception in callback")


@dataclass
class Served:
    """A running `holobazaar serve` process."""

    port: int
    data_dir: Path
    log_path: Path
    process: subprocess.Popen
    _tokens: dict[tuple, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_mark(self) -> int:
        return self.log_path.stat().st_size

    def tracebacks(self, since: int = 0) -> list[str]:
        """Lines of the log (from byte `since`) that show a traceback or unhandled error."""
        text = self.log_path.read_bytes()[since:].decode(errors="replace")
        return [line for line in text.splitlines() if any(m in line for m in TRACE_MARKERS)]

    def alive(self) -> bool:
        return self.process.poll() is None

    def token(self, roles: tuple[str, ...], markets: tuple[str, ...]) -> str:
        """An API token, made once per (roles, markets) in the server's database, as
        `holobazaar token create` makes it."""
        key = (roles, markets)
        if key not in self._tokens:
            from holobazaar import db
            from holobazaar.accounts import service
            from holobazaar.config import Settings

            url = Settings(data_dir=self.data_dir).resolved_database_url
            engine = db.make_engine(url)
            try:
                self._tokens[key], _ = service.create_token(
                    engine, f"fuzz {'-'.join(roles)} {'-'.join(markets) or 'all'}",
                    list(roles), list(markets), None, actor="tests")
            finally:
                engine.dispose()
        return self._tokens[key]


@contextlib.contextmanager
def serve(tmp: Path, *extra: str) -> Iterator[Served]:
    port = free_port()
    content = copy_content(tmp / "content")
    data = tmp / "data"
    command = [str(Path(sys.executable).parent / "holobazaar"), "serve", "--port", str(port),
               "--data-dir", str(data), "--content", str(content), "--no-watch",
               "--log-level", "warning", *extra]
    log_path = tmp / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    served = Served(port, data, log_path, process)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, served.log()
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{served.url}/healthz", timeout=1).status_code == 200:
                    break
            assert time.monotonic() < deadline, "server did not start:\n" + served.log()
            time.sleep(0.1)
        yield served
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


