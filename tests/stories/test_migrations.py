"""Migration 0003 on SQLite and PostgreSQL (a throwaway database per run): upgrade,
the repository working on it (save, lifecycle, revisions, search with highlights and
filters), downgrade and upgrade again."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic import command
from sqlalchemy import inspect

from holobazaar import db
from holobazaar.stories import files, search, service
from holobazaar.stories.search import Filters

from support.content import REPO
from support.databases import throwaway_postgres

TABLES = {"producer", "story", "recipe", "story_beat", "recipe_ingredient",
          "content_revision", "search_doc"}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request, tmp_path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'hb.db'}"
        return
    with throwaway_postgres("stories") as url:
        yield url

def test_migration_and_repository(database_url):
    db.upgrade(database_url)
    engine = db.make_engine(database_url)
    try:
        assert set(inspect(engine).get_table_names()) >= TABLES
        report = files.import_directory(engine, REPO / "stories", "tests", max_bytes=1 << 20)
        assert report.ok and len(report.imported) == 20
        hits = search.search(engine, "tomatoes")
        assert hits[0].slug == "tomatoes-in-the-cold-tunnel"
        assert "\ue000" in hits[0].snippet  # highlight markers from the database
        assert "mark" in hits[0].as_json()["snippet_html"]
        vegan = {h.slug for h in search.search(engine, "kale", Filters(diet="vegan"))}
        assert vegan == {"borlotti-and-kale-potluck-stew", "lions-mane-steaks"}
        assert [h.slug for h in search.search(engine, "storks nes")] == ["where-the-storks-nest"]

        current = service.get(engine, "story", "thirty-hours-of-rye")
        service.transition(engine, "story", "thirty-hours-of-rye", "greenhaven", "archived", "t")
        assert "thirty-hours-of-rye" not in {h.slug for h in search.search(engine, "rye")}
        revisions = service.revisions(engine, "story", "thirty-hours-of-rye", "greenhaven")
        assert [r.action for r in revisions] == ["import", "archived"]
        assert current.revision == 1

        engine.dispose()
        command.downgrade(db.alembic_config(database_url), "0002")
        engine = db.make_engine(database_url)
        assert not TABLES & set(inspect(engine).get_table_names())
        assert "user_account" in inspect(engine).get_table_names()
        engine.dispose()
        db.upgrade(database_url)
        engine = db.make_engine(database_url)
        assert set(inspect(engine).get_table_names()) >= TABLES
    finally:
        engine.dispose()
