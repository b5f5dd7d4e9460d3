"""Stored assets on PostgreSQL (a throwaway database per run): the migration applies, an
ingest is recorded with its files (JSON columns, big integers), a second ingest of the same
input is the same row, and a refusal is recorded without files."""

from __future__ import annotations

import pytest
import trimesh

from holobazaar.assets import jobs, service
from holobazaar.assets.pipeline.options import Options
from holobazaar.assets.storage import AssetFiles

pytestmark = pytest.mark.postgres



def test_ingest_on_postgres(pg_engine, tmp_path):
    source = tmp_path / "src" / "crate.stl"
    source.parent.mkdir()
    trimesh.creation.box((0.3, 0.2, 0.2)).export(source)
    data = AssetFiles(tmp_path / "var")
    asset = jobs.ingest_paths(pg_engine, data, [source], market="greenhaven", name=None,
                                 options=Options())
    assert asset.status == "ready", asset.error
    assert asset.triangles == 12 and asset.bbox["min"][1] == 0
    assert [w["code"] for w in asset.warnings] == ["UNITS_ASSUMED"]
    again = jobs.ingest_paths(pg_engine, data, [source], market="greenhaven", name=None,
                                 options=Options())
    assert again.id == asset.id and again.files == asset.files
    refs = service.stored_refs(pg_engine)
    assert refs["greenhaven"]["crate"].lods[0].triangles == 12
    bad = tmp_path / "src" / "bad.glb"
    bad.write_bytes(b"glTF")
    refused = jobs.ingest_paths(pg_engine, data, [bad], market=None, name=None,
                                   options=Options())
    assert refused.status == "failed" and "truncated GLB" in refused.error
    assert refused.files == []
    assert len(service.list_assets(pg_engine)) == 2
