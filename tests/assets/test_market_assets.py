"""Assets belong to the market that uploaded them (#28 finding 4): the same bytes uploaded by
two markets' curators are two records, each in its own market with its own name and
uploader, sharing one processing and the same stored files. Migration 0011 keeps the rows
stored before it, on SQLite and PostgreSQL."""

from __future__ import annotations

import io

import pytest
from alembic import command
from PIL import Image
from sqlalchemy import text
from sqlmodel import select

from holobazaar import db
from holobazaar.accounts import service as accounts
from holobazaar.assets.models import StoredAsset

from support.databases import throwaway_postgres
from support.live import start_server
from support.markets import write_stall_markets
from support.waiting import processed


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 32), (200, 120, 40)).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def server(tmp_path):
    content = write_stall_markets(tmp_path / "content", ("riverside", "greenhaven"))
    live = start_server(tmp_path, content_dir=content, watch=False)
    yield live
    live.stop()


def curator(live, market: str) -> dict[str, str]:
    token, _ = accounts.create_token(live.app.state.services.engine, f"{market} curator",
                                     ["curator"],
                                     [market], None, actor="test")
    return {"Authorization": f"Bearer {token}"}


def upload(http, headers, data: bytes, **form) -> dict:
    response = http.post("/api/v1/assets", headers=headers,
                         files=[("files", ("leaf.png", data))], data=form)
    assert response.status_code == 202, response.text
    return processed(http, response.json())


def test_the_same_bytes_from_two_markets_are_two_assets(server):
    data = png()
    river, green = curator(server, "riverside"), curator(server, "greenhaven")
    with server.client() as http:
        first = upload(http, river, data, market="riverside", name="anything")
        second = upload(http, green, data, market="greenhaven", name="leaf")
        assert first["status"] == second["status"] == "ready", (first, second)
        assert first["id"] != second["id"]
        assert (first["market"], first["name"]) == ("riverside", "anything")
        assert (second["market"], second["name"]) == ("greenhaven", "leaf")
        # One processing, one set of stored files: the blobs are shared by content hash.
        assert [f["url"] for f in second["files"]] == [f["url"] for f in first["files"]]
        for f in second["files"]:
            assert http.get(f["url"]).status_code == 200
        # Each market lists its own.
        assert [a["id"] for a in http.get("/api/v1/assets?market=greenhaven").json()] == [
            second["id"]]
        assert [a["id"] for a in http.get("/api/v1/assets?market=riverside").json()] == [
            first["id"]]
        # The same upload again in the same market is the same record, not a third.
        again = upload(http, green, data, market="greenhaven", name="leaf")
        assert again["id"] == second["id"]
        assert len(http.get("/api/v1/assets").json()) == 2
        # A curator of one market still cannot upload into the other.
        assert http.post("/api/v1/assets", headers=green, files=[("files", ("x.png", data))],
                         data={"market": "riverside"}).status_code == 403
    with db.session_scope(server.app.state.services.engine) as s:
        uploaders = {a.market: a.uploaded_by for a in s.exec(select(StoredAsset)).all()}
    assert uploaders == {"riverside": "token:riverside curator",
                         "greenhaven": "token:greenhaven curator"}
    # The compositor gives each market its own name for it.
    stored = server.app.state.services.scenes.stored_assets
    assert set(stored["greenhaven"]) == {"leaf"} and set(stored["riverside"]) == {"anything"}


def test_other_options_are_another_processing(server):
    data = png()
    green = curator(server, "greenhaven")
    with server.client() as http:
        small = upload(http, green, data, market="greenhaven", name="leaf")
        large = upload(http, green, data, market="greenhaven", name="leaf-big", size="2")
    assert small["id"] != large["id"] and large["name"] == "leaf-big"


ROW = ("INSERT INTO stored_asset (id, market, name, source_name, kind, status, input_bytes, "
       "output_bytes, triangles, processing_ms, warnings, created_at) VALUES "
       "(:id, 'greenhaven', 'tomato', 'Tomato.glb', 'model', 'ready', 100, 50, 12, 3, '[]', "
       "'2026-11-30 10:00:00+00')")
FILE = ("INSERT INTO stored_asset_file (asset_id, role, sha256, ext, media_type, bytes, "
        "triangles) VALUES (:id, 'lod0', :sha, 'glb', 'model/gltf-binary', 50, 12)")


def check_migration(url: str) -> None:
    db.upgrade(url, "0010")
    engine = db.make_engine(url)
    old = "a" * 64
    with engine.begin() as conn:
        conn.execute(text(ROW), {"id": old})
        conn.execute(text(FILE), {"id": old, "sha": "b" * 64})
    engine.dispose()
    db.upgrade(url)
    engine = db.make_engine(url)
    with engine.connect() as conn:
        row = conn.execute(text("SELECT id, source, market, name, uploaded_by "
                                "FROM stored_asset")).one()
        assert tuple(row) == (old, old, "greenhaven", "tomato", None)
        assert conn.execute(text("SELECT count(*) FROM stored_asset_file WHERE asset_id = :id"),
                            {"id": old}).scalar() == 1
    engine.dispose()
    command.downgrade(db.alembic_config(url), "0010")
    engine = db.make_engine(url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT id FROM stored_asset")).scalar() == old
        assert conn.execute(text("SELECT count(*) FROM stored_asset_file")).scalar() == 1
    engine.dispose()
    db.upgrade(url)


def test_migration_keeps_existing_assets_sqlite(tmp_path):
    check_migration(f"sqlite:///{tmp_path / 'm.db'}")


@pytest.mark.postgres
def test_migration_keeps_existing_assets_postgres():
    with throwaway_postgres("assets0011") as url:
        check_migration(url)
