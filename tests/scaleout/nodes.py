"""Scale-out test support: the real engines (Redis and PostgreSQL, from
HOLOBAZAAR_TEST_REDIS_URL / HOLOBAZAAR_TEST_POSTGRES_URL), a private database and Redis key
prefix per test module, and `holobazaar serve` subprocesses on free loopback ports."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from holobazaar import db

REDIS_URL = os.environ.get("HOLOBAZAAR_TEST_REDIS_URL")
POSTGRES_URL = os.environ.get("HOLOBAZAAR_TEST_POSTGRES_URL")
HOW_TO = ("needs real Redis and PostgreSQL: export "
          "HOLOBAZAAR_TEST_REDIS_URL=redis://127.0.0.1:6379/0 and "
          "HOLOBAZAAR_TEST_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test "
          "(.ci/run starts both and sets them)")

MARKET, DISPLAY, SKU = "greenhaven", "zonneveld-greens", "TOM-BRANDY"
QUICK_SHOW, QUICK_ZONE, QUICK_CUES = "quick-relay", "orchard-row", 16
SYNC_SHOW, SYNC_ZONE = "sync-check", "fungi-grotto"
CHANNEL = f"market/{MARKET}/display/{DISPLAY}"
ITEM_PATH = f"/api/v1/markets/{MARKET}/items/{SKU}"


def require_engines() -> tuple[str, str]:
    if not (REDIS_URL and POSTGRES_URL):
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the scale-out tests: {HOW_TO}")
        pytest.skip(HOW_TO)
    return REDIS_URL, POSTGRES_URL


@contextlib.contextmanager
def private_database(server_url: str, label: str):
    """A fresh PostgreSQL database (migrated), dropped afterwards."""
    name = f"hb_{label}_{secrets.token_hex(4)}"
    admin = create_engine(make_url(server_url).set(database="postgres"),
                          isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    try:
        db.upgrade(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


@contextlib.contextmanager
def private_prefix(redis_url: str, label: str):
    """A Redis key prefix of our own; its keys are deleted afterwards (never FLUSHDB)."""
    prefix = f"hbtest:{label}:{secrets.token_hex(4)}:"
    client = redis.Redis.from_url(redis_url)
    try:
        yield prefix
    finally:
        delete_prefix(client, prefix)
        client.close()


def delete_prefix(client: redis.Redis, prefix: str) -> int:
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)
    return len(keys)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def holobazaar_command() -> str:
    return shutil.which("holobazaar", path=str(Path(sys.executable).parent)) or "holobazaar"


@dataclass
class Node:
    name: str
    port: int
    process: subprocess.Popen
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs (no lease release, nothing flushed)."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@dataclass
class Deployment:
    """Several `holobazaar serve` processes sharing one database and one Redis prefix."""

    tmp: Path
    database_url: str
    redis_url: str
    prefix: str
    content: Path
    nodes: list[Node] = field(default_factory=list)
    _token: str | None = None

    def start(self, *names: str, extra: tuple[str, ...] = (), wait: bool = True) -> list[Node]:
        started = []
        for name in names:
            port = free_port()
            log_path = self.tmp / f"{name}.log"
            args = [holobazaar_command(), "serve", "--port", str(port),
                    "--data-dir", str(self.tmp / name), "--content", str(self.content),
                    "--database-url", self.database_url, "--broker-url", self.redis_url,
                    "--redis-prefix", self.prefix, "--no-watch", "--log-level", "warning",
                    *extra]
            env = {**os.environ, "PYTHONUNBUFFERED": "1", "HOLOBAZAAR_LEASE_TTL": "1.5"}
            with log_path.open("wb") as out:
                process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT,
                                           env=env)
            started.append(Node(name, port, process, log_path))
        self.nodes.extend(started)
        if wait:
            for node in started:
                self.wait_ready(node)
        return started

    def wait_ready(self, node: Node, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if node.process.poll() is not None:
                raise RuntimeError(f"node {node.name} exited:\n{node.log()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{node.url}/healthz", timeout=1).status_code == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"node {node.name} did not become ready:\n{node.log()}")

    @property
    def write_headers(self) -> dict[str, str]:
        """An admin API token, made once in the shared database (any node accepts it)."""
        if self._token is None:
            from holobazaar.accounts import service

            engine = db.make_engine(self.database_url, 1, 0)
            try:
                self._token, _ = service.create_token(engine, "scale-out tests", ["admin"],
                                                      [], None, actor="tests")
            finally:
                engine.dispose()
        return {"Authorization": f"Bearer {self._token}"}

    def stop_all(self) -> None:
        for node in self.nodes:
            node.stop()


@contextlib.contextmanager
def deployment(tmp: Path, label: str):
    redis_url, postgres_url = require_engines()
    from support import copy_content

    content = copy_content(tmp / "content")
    with private_database(postgres_url, label) as database_url, \
            private_prefix(redis_url, label) as prefix:
        found = Deployment(tmp, database_url, redis_url, prefix, content)
        try:
            yield found
        finally:
            found.stop_all()


def write_quick_show(content: Path) -> None:
    """A show whose cues follow each other every 0.4 s (the demo show's are tens of
    seconds apart): one GO runs all of them, long enough to kill the clock's node."""
    cues = []
    for n in range(1, QUICK_CUES + 1):
        cues.append(f"""    - number: "{n}"
      name: Step {n}
      duration: 0.2
      post_wait: 0.4
      continue: {"auto-continue" if n < QUICK_CUES else "none"}
      actions:
        - {{kind: overlay, title: "Step {n}", text: "Relay step {n}."}}
""")
    (content / "scenes" / MARKET / "shows" / f"{QUICK_SHOW}.yaml").write_text(
        f"""version: 1
show:
  id: {QUICK_SHOW}
  title: Quick relay
  zone: {QUICK_ZONE}
  cues:
{"".join(cues)}""")


def write_sync_show(content: Path) -> None:
    """A one-cue show in its own zone: the cue stays the last one, so its sync spread can
    be read from any node after clients of every node reported it."""
    (content / "scenes" / MARKET / "shows" / f"{SYNC_SHOW}.yaml").write_text(
        f"""version: 1
show:
  id: {SYNC_SHOW}
  title: Sync check
  zone: {SYNC_ZONE}
  cues:
    - number: "1"
      name: Together
      duration: 1
      actions:
        - {{kind: overlay, title: "Together", text: "All at once."}}
""")


async def subscribed(nodes: list[Node], channel: str):
    """A stream client per node (repeat a node for several), each joined to `channel` and
    holding its snapshot."""
    from streamclient import StreamClient

    clients = [StreamClient(node.ws_url) for node in nodes]
    for client in clients:
        await client.connect()
        await client.hello(channel)
        await client.next("snapshot")
    return clients
