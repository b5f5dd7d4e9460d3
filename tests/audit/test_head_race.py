"""A head is signed while entries are appended: its audit height and hash must describe the
same entry. Each statement of `audit_head` may see a newer log than the one before (the
soak test caught a head whose height counted an entry appended after its hash was read,
so `audit verify` called the log re-hashed)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import event
from sqlmodel import select

from holobazaar.audit import chain, heads
from holobazaar.audit import service as audit
from holobazaar.audit.models import SignedHead
from holobazaar.db import make_engine, session_scope, upgrade


def _append(engine, n: int) -> None:
    with session_scope(engine) as session:
        audit.append(session, "test", "test.entry", None, {"n": n})


def test_an_entry_appended_between_the_heads_reads_is_not_counted(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'race.db'}"
    upgrade(url)
    engine = make_engine(url)
    for n in range(3):
        _append(engine, n)
    raced = []

    def append_after_the_last_entry_is_read(conn, cursor, statement, *args) -> None:
        if not raced and "audit_log.hash" in statement and "DESC" in statement:
            raced.append(True)
            _append(engine, 99)  # another request's change commits in between

    for signed_before in (False, True):
        raced.clear()
        event.listen(engine, "after_cursor_execute", append_after_the_last_entry_is_read)
        try:
            with session_scope(engine) as session:
                height, digest = heads.audit_head(session)
                if signed_before:
                    assert session.exec(select(SignedHead)).first() is not None
        finally:
            event.remove(engine, "after_cursor_execute", append_after_the_last_entry_is_read)
        assert raced, "the race was not staged"
        with session_scope(engine) as session:
            problems, found, total, _ = chain.walk(session, {height})
        assert problems == []
        assert total == height + 1  # the raced entry is in the log, not in the head
        assert found[height] == digest
        if not signed_before:  # second round: counted from a signed head's anchor
            with session_scope(engine) as session:
                heads.issue(session, "greenhaven")
    engine.dispose()
