"""The hash-chained audit log: appends chain, verify finds edits, removals and forks."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from holobazaar import db
from holobazaar.audit import service as audit
from holobazaar.audit.models import GENESIS, AuditEntry


@pytest.fixture
def engine(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    db.upgrade(url)
    return db.make_engine(url)


def fill(engine, n: int = 3) -> None:
    for i in range(n):
        with db.session_scope(engine) as s:
            audit.append(s, "user:carol", "test.action", "alpha", {"i": i, "note": "é ✓"})


def test_entries_chain_and_verify(engine):
    fill(engine)
    with Session(engine) as s:
        entries = list(reversed(audit.recent(s)))
        assert entries[0].prev_hash == GENESIS
        assert [e.prev_hash for e in entries[1:]] == [e.hash for e in entries[:-1]]
        assert audit.verify(s) == []


@pytest.mark.parametrize("tamper", [
    "UPDATE audit_log SET detail = '{\"i\": 99}' WHERE id = 2",
    "UPDATE audit_log SET actor = 'user:mallory' WHERE id = 1",
    "DELETE FROM audit_log WHERE id = 2",
])
def test_verify_finds_tampering(engine, tamper):
    fill(engine)
    with db.session_scope(engine) as s:
        s.execute(text(tamper))
    with Session(engine) as s:
        problems = audit.verify(s)
    assert problems and all(p.startswith("entry ") for p in problems)


def test_the_chain_cannot_fork(engine):
    fill(engine, 1)
    with Session(engine) as s:
        head = audit.recent(s)[0]
        s.add(AuditEntry(time=head.time, actor="x", action="x", market=None, detail="{}",
                         prev_hash=head.prev_hash, hash="f" * 64))
        with pytest.raises(IntegrityError):
            s.commit()


def append_concurrently(engine, threads: int, per_thread: int) -> list[BaseException]:
    """Several threads appending at once; returns what they raised."""
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(per_thread):
                with db.session_scope(engine) as s:
                    audit.append(s, f"thread:{n}", "test.concurrent", None, {"i": i})
        except BaseException as exc:  # collected and asserted by the caller
            errors.append(exc)

    workers = [threading.Thread(target=writer, args=(n,)) for n in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(60)
    return errors


def test_concurrent_appends_queue_up_on_sqlite(engine):
    assert append_concurrently(engine, threads=4, per_thread=15) == []
    with Session(engine) as s:
        assert len(audit.recent(s, limit=1000)) == 60
        assert audit.verify(s) == []
