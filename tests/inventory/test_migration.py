"""Migration 0004 on SQLite: applies over existing items (which keep their rows, with
source_version 0), downgrades and applies again."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from sqlalchemy import inspect, text

from holobazaar import db


def test_migration_up_down_up(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    db.upgrade(url, "0001")
    engine = db.make_engine(url)
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO inventory_item VALUES ('m', 'A', 'Apples', 2.5, 'EUR', 'kg', 3, "
            "'in_stock', NULL, 'content', '2026-01-01 00:00:00')"))
    db.upgrade(url)
    tables = set(inspect(engine).get_table_names())
    assert {"inventory_feed", "inventory_batch", "inventory_history", "inventory_mismatch",
            "inventory_held"} <= tables
    with engine.connect() as conn:
        assert conn.execute(text("SELECT source_version FROM inventory_item")).scalar() == 0
    command.downgrade(db.alembic_config(url), "-1")
    engine.dispose()
    engine = db.make_engine(url)
    assert "inventory_held" not in inspect(engine).get_table_names()
    columns = {c["name"] for c in inspect(engine).get_columns("inventory_item")}
    assert "source_version" not in columns
    db.upgrade(url)
    engine.dispose()
