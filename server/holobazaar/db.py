"""Database engine and migrations. SQLite (WAL) by default, any SQLAlchemy URL otherwise;
the schema is owned by Alembic (migrations/), applied on `serve` start and by
`holobazaar db upgrade`."""

from __future__ import annotations

import ast
import fcntl
import multiprocessing
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, overload

from sqlalchemy import Table, event, inspect, pool, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, SQLModel, create_engine
from starlette.concurrency import run_in_threadpool

if TYPE_CHECKING:
    from alembic.config import Config

P = ParamSpec("P")
T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

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
    from alembic.config import Config

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


class MigrationFailed(RuntimeError):
    pass


@cache
def script_heads() -> frozenset[str]:
    """The newest revisions of migrations/versions, read from the files' `revision` and
    `down_revision` assignments without loading Alembic (tests check it agrees)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.Assign):
                target, assigned = node.targets[0], node.value
            elif isinstance(node, ast.AnnAssign) and node.value is not None:
                target, assigned = node.target, node.value
            else:
                continue
            if not isinstance(target, ast.Name):
                continue
            if target.id in ("revision", "down_revision"):
                value = ast.literal_eval(assigned)
                names = {value} if isinstance(value, str) else set(value or ())
                (revisions if target.id == "revision" else parents).update(names)
    return frozenset(revisions - parents)


def at_head(url: str) -> bool:
    """True when the database's schema is the newest the migrations describe: a node
    starting on an up-to-date database then never loads Alembic (11 MB of RSS, for good)."""
    _ensure_sqlite_dir(url)
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return False
            stamped = {row[0] for row in conn.execute(text("SELECT version_num FROM "
                                                           "alembic_version"))}
    except SQLAlchemyError:
        return False  # let Alembic say what is wrong
    finally:
        engine.dispose()
    return stamped == script_heads()


def upgrade_aside(url: str) -> None:
    """`upgrade(url)` in a forked child, for `serve` before it starts serving: the server
    process itself then finds the schema at head and never imports Alembic. Call it while
    the process has no threads and no event loop (fork copies only the calling thread)."""
    if at_head(url):
        return
    if threading.active_count() > 1:  # fork would be unsafe: migrate here instead
        upgrade(url)
        return
    child = multiprocessing.get_context("fork").Process(
        target=upgrade, args=(url,), name="holobazaar-migrate")
    child.start()
    child.join()
    if child.exitcode != 0:
        raise MigrationFailed(f"migrating the database failed (exit code {child.exitcode}; "
                              f"the error is above)")


def upgrade(url: str, revision: str = "head") -> None:
    if revision == "head" and at_head(url):
        return
    from alembic import command

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
    locker = create_engine(url, poolclass=pool.NullPool)
    try:
        with locker.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK})
            try:
                command.upgrade(alembic_config(url), revision)
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK})
    finally:
        locker.dispose()


def point(function: F) -> F:
    """Mark a database function as a point operation, a single-row read or write:
    `call` then runs it in place on SQLite. Such a call takes well under a millisecond on
    the local file, while a thread hop on a core busy fanning out to 10,000 devices cost
    ~25 ms (the worker waits for the GIL at each of its many SQLite calls); a price change
    made four of them, 135 ms of its latency at 50 changes/s (docs/performance.md). The
    price: a marked write waits here, holding the event loop, while another process (a CLI
    import) holds the database's write lock; deployments with other writers use
    PostgreSQL. Mark only what is short whatever the data: no scans, no batches."""
    function.__dict__["db_point"] = True  # a bound method reads it through its function
    return function


async def call(engine: Engine, function: Callable[P, T], *args: P.args,
               **kwargs: P.kwargs) -> T:
    """THE way to run blocking database work from async code: `function(*args,
    **kwargs)` in a worker thread, or in place when it is marked `@point` and `engine` is
    SQLite (a server database does network I/O: always a worker thread). Whether a call
    may hold the event loop is decided where the function is defined, not at each call;
    blocking work that is not the database uses `run_in_threadpool`."""
    if engine.dialect.name == "sqlite" and getattr(function, "db_point", False):
        return function(*args, **kwargs)
    return await run_in_threadpool(function, *args, **kwargs)


@overload
def as_utc(moment: datetime) -> datetime: ...
@overload
def as_utc(moment: None) -> None: ...
@overload
def as_utc(moment: datetime | None) -> datetime | None: ...
def as_utc(moment: datetime | None) -> datetime | None:
    """A time read from the database as an aware UTC time: SQLite hands datetimes back
    without a zone, and every stored time was written as UTC."""
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


def table(model: type[SQLModel]) -> Table:
    """A table model's Core table, for bulk inserts (SQLModel does not declare the
    class's `__table__` to type checkers)."""
    found = inspect(model).local_table
    assert isinstance(found, Table)
    return found


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
