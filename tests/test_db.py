"""Start-up without Alembic: `serve` migrates in a child process and a node whose database
is at head never loads Alembic; the server imports nothing only other commands need
(numpy, trimesh, httpx, cryptography's X.509). Each is RSS the server keeps for good,
and at 10,000 connections the fan-out budget (issue #10) feels it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from alembic.script import ScriptDirectory

from holobazaar import db


def run_python(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_the_heads_read_from_the_migration_files_are_alembics() -> None:
    script = ScriptDirectory.from_config(db.alembic_config("sqlite://"))
    assert db.script_heads() == frozenset(script.get_heads())


def test_a_database_is_at_head_only_after_the_last_migration(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    assert not db.at_head(url)  # no alembic_version table yet
    db.upgrade(url, "0002")
    assert not db.at_head(url)
    db.upgrade(url)
    assert db.at_head(url)


def test_serve_migrates_aside_and_an_up_to_date_database_never_loads_alembic(
        tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'aside.db'}"
    out = run_python(f"""
        import sys
        from holobazaar import db
        db.upgrade_aside({url!r})      # a fresh database: migrated by a forked child
        db.upgrade({url!r})            # what every server's lifespan does next
        print(db.at_head({url!r}), "alembic" in sys.modules)
    """)
    assert out == "True False"


def test_a_migration_that_fails_aside_is_reported(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}"  # a folder, not a database file
    # In a process of its own: upgrade_aside forks only without other threads, and a test
    # process may still hold an earlier test's (it then migrates in place instead).
    out = run_python(f"""
        from holobazaar import db
        try:
            db.upgrade_aside({url!r})
        except db.MigrationFailed as failed:
            print(failed)
    """)
    assert "exit code 1" in out, out


def test_the_server_imports_only_what_serving_needs() -> None:
    out = run_python("""
        import sys
        from holobazaar.web.app import create_app
        create_app()
        heavy = ["alembic", "numpy", "trimesh", "httpx", "cryptography.x509", "mako"]
        print(",".join(m for m in heavy if m in sys.modules) or "none")
    """)
    assert out == "none", f"loaded at start: {out}"


def test_point_operations_run_in_place_on_sqlite_and_other_calls_in_a_thread(
        tmp_path: Path) -> None:
    """On a core busy with fan-out a thread hop cost ~25 ms per call (the worker waits for
    the GIL at each SQLite call): functions marked `@db.point` run in place on SQLite.
    Everything else, and everything on a server database (network I/O), runs in a worker
    thread."""
    import asyncio
    import threading

    from sqlalchemy import create_engine

    @db.point
    def point() -> int:
        return threading.get_ident()

    def unmarked() -> int:
        return threading.get_ident()

    class Guard:
        @db.point
        def use(self) -> int:
            return threading.get_ident()

    async def where(engine, function) -> int:
        return await db.call(engine, function)

    sqlite = create_engine(f"sqlite:///{tmp_path / 'c.db'}")
    postgres = create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")  # never used
    here = threading.get_ident()
    assert asyncio.run(where(sqlite, point)) == here
    assert asyncio.run(where(sqlite, Guard().use)) == here  # a marked method, bound
    assert asyncio.run(where(sqlite, unmarked)) != here
    assert asyncio.run(where(postgres, point)) != here
    assert asyncio.run(where(postgres, unmarked)) != here
