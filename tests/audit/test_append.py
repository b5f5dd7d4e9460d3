"""The cheap append (#26): the same entries as before, made with less work. Its canonical
form is the RFC 8785 bytes; its hash is the verifier's; a second append in a transaction
chains from the first in memory; two nodes writing at once on PostgreSQL keep one chain."""

from __future__ import annotations

import json
import threading
from decimal import Decimal
from pathlib import Path

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import event
from sqlalchemy.engine import Engine

from holobazaar.audit import chain
from holobazaar.audit import service as audit
from holobazaar.audit.public import PublicChange
from holobazaar.canonical import canonical_fast
from holobazaar.db import make_engine, session_scope, upgrade
from holobazaar.inventory import service as inventory
from holobazaar.inventory.models import ItemUpdate
from holobazaar.scenes.inputs import ItemFacts

from support.databases import postgres_engine

PLAIN = st.recursive(st.none() | st.booleans() | st.integers(-2**53 + 1, 2**53 - 1) | st.text(),
                     lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=10)
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False,
                                                                          allow_infinity=False)
                    | st.text(), lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=10)


@settings(max_examples=400, deadline=None)
@given(JSON)
def test_the_fast_canonical_form_is_rfc8785(value) -> None:
    try:
        expected = rfc8785.dumps(value)
    except Exception:
        with pytest.raises(Exception):  # noqa: B017 - whatever rfc8785 refuses, so do we
            canonical_fast(value)
        return
    assert canonical_fast(value) == expected


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=20), st.text(max_size=20), st.none() | st.text(max_size=10),
       st.dictionaries(st.text(max_size=6), PLAIN, max_size=4))
def test_the_spliced_entry_hash_is_the_verifiers(actor, action, market, detail) -> None:
    """Plain details (what `append` splices; floats take the verifier's own way)."""
    try:
        detail_bytes = rfc8785.dumps(detail)
        chain.entry_hash(chain.GENESIS, chain_time(), actor, action, market, "{}")
    except Exception:
        return  # a lone surrogate: nothing to append either way
    moment = chain_time()
    assert chain.new_entry_hash(chain.GENESIS, chain.time_text(moment), actor, action, market,
                                detail_bytes) == chain.entry_hash(
        chain.GENESIS, moment, actor, action, market, detail_bytes.decode("utf-8"))


def chain_time():
    from datetime import UTC, datetime

    return datetime(2026, 12, 4, 12, 0, 0, 123456, tzinfo=UTC)


def _count_statements(engine: Engine) -> list[str]:
    seen: list[str] = []
    event.listen(engine, "before_cursor_execute",
                 lambda conn, cursor, statement, *args: seen.append(statement))
    return seen


def _sqlite(tmp_path: Path) -> Engine:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    upgrade(url)
    return make_engine(url)


def test_two_appends_in_a_transaction_read_the_head_once(tmp_path: Path) -> None:
    engine = _sqlite(tmp_path)
    with session_scope(engine) as session:
        audit.append(session, "test", "test.first", None, {"n": 0})
    seen = _count_statements(engine)
    with session_scope(engine) as session:
        first = audit.append(session, "test", "test.record", "greenhaven", {"n": 1})
        second = audit.append(session, "test", "test.change", "greenhaven", {"n": 2},
                              public=[PublicChange("HON", "6.30", "EUR", "jar", "in_stock",
                                                   "manual")])
    heads = [s for s in seen if "audit_log.hash" in s and "DESC" in s]
    assert len(heads) == 1
    with session_scope(engine) as session:
        problems, _, height, _ = chain.walk(session)
        assert problems == [] and height == 3 and audit.verify(session) == []
        entries = audit.recent(session, 2)
    assert [e.hash for e in entries] == [second, first]
    assert entries[0].prev_hash == first
    assert json.loads(entries[0].detail)["public"]["to"] == 1
    engine.dispose()


def test_a_rolled_back_savepoint_or_a_new_transaction_reads_the_head_again(
        tmp_path: Path) -> None:
    engine = _sqlite(tmp_path)
    with session_scope(engine) as session:
        audit.append(session, "test", "test.kept", None, {"n": 0})
        savepoint = session.begin_nested()
        audit.append(session, "test", "test.undone", None, {"n": 1})
        savepoint.rollback()
        audit.append(session, "test", "test.after", None, {"n": 2})
        session.commit()
        # The same session, a new transaction, after another writer appended.
        with session_scope(engine) as other:
            audit.append(other, "test", "test.other", None, {"n": 3})
        audit.append(session, "test", "test.later", None, {"n": 4})
    with session_scope(engine) as session:
        assert audit.verify(session) == []
        assert [e.action for e in reversed(audit.recent(session))] == [
            "test.kept", "test.after", "test.other", "test.later"]
    engine.dispose()


def _item(engine: Engine) -> None:
    inventory.seed_items(engine, "greenhaven", {"HON": ItemFacts(
        "HON", "Honey", Decimal("6.30"), "EUR", "jar", 5, "in_stock", None)})


def test_a_manual_change_stores_the_row_and_its_version_as_read_back(tmp_path: Path) -> None:
    engine = _sqlite(tmp_path)
    _item(engine)
    facts, version = inventory.change_item(engine, "greenhaven", "HON",
                                           ItemUpdate(price=Decimal("6.5"), stock=4))
    stored = inventory.stored_item(engine, "greenhaven", "HON")
    assert stored is not None and stored.version == version
    assert stored.facts == facts and stored.facts.price == Decimal("6.5")
    assert inventory.version_of(engine, "greenhaven", "HON") == version
    engine.dispose()


@pytest.mark.postgres
def test_two_nodes_changing_items_at_once_keep_one_chain_on_postgres() -> None:
    """Two engines (two nodes), each request a token record and a change in one
    transaction, as the PATCH route makes them: the chains stay whole."""
    with postgres_engine("audit-append") as node_a:
        node_b = make_engine(node_a.url.render_as_string(hide_password=False))
        _item(node_a)
        errors: list[BaseException] = []

        def writer(engine: Engine, n: int) -> None:
            try:
                for i in range(15):
                    def record(session, i: int = i) -> None:
                        audit.append(session, f"token:{n}", "token.write", "greenhaven",
                                     {"request": f"PATCH {n}/{i}"})
                    inventory.change_item(engine, "greenhaven", "HON",
                                          ItemUpdate(stock=n * 100 + i), actor=f"token:{n}",
                                          also=record)
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=writer, args=(engine, n))
                   for n, engine in enumerate((node_a, node_b, node_a, node_b))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert not errors
        with session_scope(node_a) as session:
            assert audit.verify(session) == []
            problems, _, height, _ = chain.walk(session)
        assert problems == [] and height >= 4 * 15 * 2
        node_b.dispose()
