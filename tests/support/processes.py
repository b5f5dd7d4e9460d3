"""`holobazaar serve` as its own process on a loopback port, its output in a file the tests
read (for tracebacks, or for what it logged); API tokens made in a server's database; the
resident memory of a process."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from support.content import copy_content
from support.net import NotReady, free_port, wait_ready

# What a traceback or an unhandled error leaves in the server's log.
TRACE_MARKERS = ("Traceback (most recent call last)", "Fatal error on transport",
                 "Exception in ASGI application", "Task exception was never retrieved",
                 "Exception in callback")


def require_node_peer() -> None:
    """The bench's Node side (bench/node: the `ws` peer and the crowd generator) is
    installed; a test that drives it fails, naming the set-up step, when it is not."""
    import pytest

    from support.content import REPO
    if not (REPO / "bench" / "node" / "node_modules" / "ws").is_dir() or not shutil.which(
            "node"):
        pytest.fail("bench/node/node_modules is missing: run `make setup` "
                    "(npm ci in bench/node)")


def holobazaar_command() -> str:
    """The `holobazaar` script of the Python running the tests (the virtualenv's)."""
    return shutil.which("holobazaar", path=str(Path(sys.executable).parent)) or "holobazaar"


def api_token(database_url: str, name: str, roles: Sequence[str],
              markets: Sequence[str] = (), expires: timedelta | None = None) -> str:
    """An API token made in a server's database, as `holobazaar token create` makes it."""
    from holobazaar import db
    from holobazaar.accounts import service

    engine = db.make_engine(database_url, 1, 0)
    try:
        token, _ = service.create_token(engine, name, list(roles), list(markets), expires,
                                        actor="tests")
    finally:
        engine.dispose()
    return token


def status_kb(pid: int, field: str = "VmRSS") -> int:
    """A size from /proc/<pid>/status in KB: VmRSS (resident now), VmHWM (its peak); 0 for
    a process that has none (a zombie)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


@dataclass
class ServeProcess:
    """A `holobazaar serve` process."""

    name: str
    port: int
    process: subprocess.Popen
    log_path: Path
    database_url: str
    _tokens: dict[tuple, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_mark(self) -> int:
        return self.log_path.stat().st_size

    def tracebacks(self, since: int = 0) -> list[str]:
        """Lines of the log (from byte `since`) that show a traceback or unhandled error."""
        text = self.log_path.read_bytes()[since:].decode(errors="replace")
        return [line for line in text.splitlines() if any(m in line for m in TRACE_MARKERS)]

    def alive(self) -> bool:
        return self.process.poll() is None

    def wait_ready(self, timeout: float = 60) -> None:
        wait_ready(self.url, timeout, self.process, self.log_path)

    def token(self, roles: tuple[str, ...] = ("admin",), markets: tuple[str, ...] = ()) -> str:
        """An API token, made once per (roles, markets) in the server's database."""
        key = (roles, markets)
        if key not in self._tokens:
            self._tokens[key] = api_token(
                self.database_url, f"tests {'-'.join(roles)} {'-'.join(markets) or 'all'}",
                roles, markets)
        return self._tokens[key]

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs (no lease release, nothing flushed)."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self, timeout: float = 15) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()


def start_serve(tmp: Path, *flags: str, name: str = "serve", content: Path | None = None,
                data_dir: Path | None = None, database_url: str | None = None,
                env: dict[str, str] | None = None, stdout_path: Path | None = None,
                wait: bool = True, timeout: float = 60) -> ServeProcess:
    """Start `holobazaar serve` on a free port, by default over a fresh data folder
    (tmp/data) and a copy of the demo content, its output in tmp/<name>.log (stderr only
    when `stdout_path` takes stdout); `wait`: until /healthz answers."""
    from holobazaar.config import Settings

    port = free_port()
    content = content or copy_content(tmp / "content")
    data_dir = data_dir or tmp / "data"
    command = [holobazaar_command(), "serve", "--port", str(port), "--data-dir", str(data_dir),
               "--content", str(content), "--no-watch", *flags]
    if database_url is not None:
        command += ["--database-url", database_url]
    log_path = tmp / f"{name}.log"
    with contextlib.ExitStack() as files:
        log = files.enter_context(log_path.open("wb"))
        out = files.enter_context(stdout_path.open("wb")) if stdout_path else log
        err = log if stdout_path else subprocess.STDOUT
        process = subprocess.Popen(command, stdout=out, stderr=err,
                                   env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
    served = ServeProcess(name, port, process, log_path,
                          database_url or Settings(data_dir=data_dir).resolved_database_url)
    if wait:
        try:
            served.wait_ready(timeout)
        except NotReady:
            served.stop()
            raise
    return served


@contextlib.contextmanager
def serve(tmp: Path, *flags: str, **options) -> Iterator[ServeProcess]:
    """`start_serve`, stopped afterwards."""
    served = start_serve(tmp, *flags, **options)
    try:
        yield served
    finally:
        served.stop()
