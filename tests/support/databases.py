"""The real engines for tests and benchmarks: a throwaway PostgreSQL database per test (or
run), a Redis key prefix of one's own, and a private redis-server that may be stopped.

Tests find the shared servers in HOLOBAZAAR_TEST_POSTGRES_URL / HOLOBAZAAR_TEST_REDIS_URL;
without them they skip with a how-to, except under CI, where they fail."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from support.net import free_port

if TYPE_CHECKING:
    import redis
    from sqlalchemy.engine import Engine

POSTGRES_HOWTO = ("PostgreSQL tests need HOLOBAZAAR_TEST_POSTGRES_URL, e.g. "
                  "HOLOBAZAAR_TEST_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test"
                  " (.ci/run sets it)")
REDIS_HOWTO = ("Redis tests need HOLOBAZAAR_TEST_REDIS_URL, e.g. "
               "HOLOBAZAAR_TEST_REDIS_URL=redis://127.0.0.1:6379/0 (.ci/run sets it)")


def _required(variable: str, howto: str) -> str:
    import pytest

    url = os.environ.get(variable)
    if not url:
        if os.environ.get("CI") == "true":
            pytest.fail(howto)
        pytest.skip(howto)
    return url


def require_postgres() -> str:
    """The test PostgreSQL server's URL (skips, or fails under CI, without one)."""
    import pytest

    url = _required("HOLOBAZAAR_TEST_POSTGRES_URL", POSTGRES_HOWTO)
    pytest.importorskip("psycopg")
    return url


def require_redis() -> str:
    """The test Redis server's URL (skips, or fails under CI, without one)."""
    return _required("HOLOBAZAAR_TEST_REDIS_URL", REDIS_HOWTO)


@contextlib.contextmanager
def private_database(server_url: str, label: str, migrate: bool = False) -> Iterator[str]:
    """A fresh database on the PostgreSQL server at `server_url` (migrated to head when
    `migrate`), dropped afterwards: yields its URL."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"hb_{label}_{secrets.token_hex(4)}"
    admin = create_engine(make_url(server_url).set(database="postgres"),
                          isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    try:
        if migrate:
            from holobazaar import db

            db.upgrade(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


@contextlib.contextmanager
def throwaway_postgres(label: str, migrate: bool = False) -> Iterator[str]:
    """A fresh database on the test PostgreSQL server for one test: yields its URL."""
    with private_database(require_postgres(), label, migrate) as url:
        yield url


@contextlib.contextmanager
def postgres_engine(label: str) -> Iterator[Engine]:
    """An engine on a fresh, migrated database of the test PostgreSQL server."""
    from holobazaar import db

    with throwaway_postgres(label, migrate=True) as url:
        engine = db.make_engine(url)
        try:
            yield engine
        finally:
            engine.dispose()


def delete_prefix(server: redis.Redis | str, prefix: str) -> int:
    """Delete the keys under `prefix` (never FLUSHDB: the Redis may be shared), on a client
    or on the Redis at a URL."""
    import redis

    client = redis.Redis.from_url(server) if isinstance(server, str) else server
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        return len(keys)
    finally:
        if client is not server:
            client.close()


@contextlib.contextmanager
def private_prefix(redis_url: str, label: str) -> Iterator[str]:
    """A Redis key prefix of our own; its keys are deleted afterwards."""
    import redis

    prefix = f"hbtest:{label}:{secrets.token_hex(4)}:"
    client = redis.Redis.from_url(redis_url)
    try:
        yield prefix
    finally:
        delete_prefix(client, prefix)
        client.close()


class PrivateRedis:
    """A redis-server of one's own on a loopback port, without persistence (a restart loses
    its data), for tests and runs that stop it on purpose: the shared Redis is never
    touched."""

    def __init__(self, folder: Path, preexec_fn: Callable[[], None] | None = None) -> None:
        self.port = free_port()
        self.folder = folder
        self.preexec_fn = preexec_fn
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.spawn()
        self.wait()

    def spawn(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("needs redis-server on PATH (a private one is started)")
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.folder), "--protected-mode", "yes"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=self.preexec_fn)

    def wait(self, timeout: float = 20) -> None:
        import redis

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(redis.RedisError):
                if redis.Redis(port=self.port, socket_timeout=1).ping():
                    return
            time.sleep(0.05)
        raise RuntimeError("the private redis-server did not start")

    def stop(self, timeout: float = 10) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


class SqliteTemplate:
    """New SQLite databases start as a copy of one migrated in this process: every live
    server and app of a test run migrates a fresh file at start, ~0.5 s of CPU each, to the
    same schema. Wraps `holobazaar.db.upgrade` (tests/conftest.py installs it): a missing
    file upgraded to head is copied from the template first, then upgraded as always (it
    finds the schema at head). The migrations themselves still run: once here for the
    template, and in the tests that migrate step by step (tests/test_db.py and others)."""

    def __init__(self, upgrade: Callable[..., None], folder: Path) -> None:
        self.real_upgrade = upgrade
        self.folder = folder
        self._template: Path | None = None

    def template(self) -> Path:
        if self._template is None:
            import sqlite3

            migrated = self.folder / "migrated.db"
            self.real_upgrade(f"sqlite:///{migrated}")
            template = self.folder / "template.db"
            with contextlib.closing(sqlite3.connect(migrated)) as conn:
                conn.execute("VACUUM INTO ?", (str(template),))  # one file, no WAL beside
            self._template = template
        return self._template

    def upgrade(self, url: str, revision: str = "head") -> None:
        if revision == "head" and url.startswith("sqlite:///") and ":memory:" not in url:
            path = Path(url.split("///", 1)[1])
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(self.template(), path)
        self.real_upgrade(url, revision)
