"""Database engine and migrations. SQLite (WAL) by default, any SQLAlchemy URL otherwise;
the schema is owned by Alembic (migrations/), applied on `serve` start and by
`holobazaar db upgrade`."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, create_engine

MIGRATIONS = Path(__file__).parent / "migrations"
# PostgreSQL advisory lock key held while migrating: nodes starting together take turns.
MIGRATION_LOCK = 0x486F6C6F  # "Holo"


def _ensure_sqlite_dir(url: str) -> None:
    sqlite_file = _sqlite_file(url)
    if sqlite_file is not None:
        sqlite_file.parent.mkdir(parents=True, exist_ok=True)


def make_engine(url: str, pool_size: int = 10, max_overflow: int = 10) -> Engine:
    if url.startswith("sqlite"):
        _ensure_sqlite_dir(url)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    # Server databases: each process keeps `pool_size` connections (size it for processes x
    # machines under the server's max_connections); pre-ping drops ones a failover closed.
    return create_engine(url, pool_pre_ping=True, pool_size=pool_size,
                         max_overflow=max_overflow)


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def _sqlite_file(url: str) -> Path | None:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            return Path(path)
    return None


def upgrade(url: str, revision: str = "head") -> None:
    _ensure_sqlite_dir(url)
    sqlite_file = _sqlite_file(url)
    if sqlite_file is not None:
        # `serve --workers N` starts N processes on one SQLite file at once: they take
        # turns (an OS file lock beside the database), the later ones find it at head.
        with open(sqlite_file.with_name(sqlite_file.name + ".migrate-lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                command.upgrade(alembic_config(url), revision)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        return
    if not url.startswith("postgresql"):
        command.upgrade(alembic_config(url), revision)
        return
    # Several nodes start at once against one database: only one migrates at a time, the
    # others then find the schema at head and have nothing to do.
    from sqlalchemy import create_engine as sa_create_engine
    from sqlalchemy import pool, text

    locker = sa_create_engine(url, poolclass=pool.NullPool)
    try:
        with locker.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK})
            try:
                command.upgrade(alembic_config(url), revision)
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK})
    finally:
        locker.dispose()


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
