"""Assets on every node (#22): the shared asset stores and processing jobs a node claims.

- Two `holobazaar serve` processes with --asset-store postgresql (a private PostgreSQL
  database and Redis prefix): a 5 MB model uploaded on one is processed by one node and
  served by the other, within 2 s of its processing finishing (the figure is printed);
  a processing job survives the SIGKILL of the node running it.
- The S3 store against moto's S3 server on loopback: files round-trip by hash, a second
  node fetches them; with the server stopped, uploads are refused with 503 naming the
  store and files a node has are still served.
- The PostgreSQL store's blobs: chunked, hash-checked on fill, an outage named."""

from __future__ import annotations

import hashlib
import io
import time

import httpx
import numpy as np
import pytest
from PIL import Image

from support.databases import throwaway_postgres
from support.live import start_server
from support.net import free_port
from support.waiting import processed, wait_for


def textured_sphere(edge: int = 1300, seed: int = 0) -> bytes:
    """A sphere with an incompressible texture: ~5 MB at the default edge of 1300 px."""
    import trimesh

    pixels = np.random.default_rng(seed).integers(0, 256, (edge, edge, 3), dtype=np.uint8)
    mesh = trimesh.creation.icosphere(subdivisions=4, radius=0.15)
    uv = np.c_[np.arctan2(mesh.vertices[:, 0], mesh.vertices[:, 2]) / (2 * np.pi) + 0.5,
               mesh.vertices[:, 1] / 0.3 + 0.5]
    mesh.visual = trimesh.visual.TextureVisuals(uv=uv, image=Image.fromarray(pixels))
    data = mesh.export(file_type="glb")
    assert isinstance(data, bytes)
    return data


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---- two nodes, PostgreSQL store ---------------------------------------------------------

@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory):
    from scaleout.nodes import deployment

    with deployment(tmp_path_factory.mktemp("shared-store"), "assetstore") as found:
        extra = ("--asset-store", "postgresql")
        first = found.start("a", extra=extra, wait=False)[0]
        found.model = textured_sphere()  # while the node starts
        first.wait_ready(120)
        # One after the other: two nodes importing the demo stories' translations into an
        # empty database at the same moment can collide (a UniqueViolation at start-up).
        found.start("b", extra=extra)
        yield found


def _row(database_url: str, asset_id: str) -> dict:
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url, poolclass=__import__("sqlalchemy").pool.NullPool)
    try:
        with engine.connect() as conn:
            row = conn.execute(text("SELECT status, claimed_by, attempts, finished_at FROM "
                                    "stored_asset WHERE id = :id"),
                               {"id": asset_id}).mappings().first()
            return dict(row) if row else {}
    finally:
        engine.dispose()


def _node_of(nodes, claimed_by: str):
    pid = int(claimed_by.split(":")[1])
    return next(n for n in nodes if n.pid == pid)


def _upload(node, headers, data: bytes, **form) -> dict:
    answer = httpx.post(f"{node.url}/api/v1/assets", headers=headers, timeout=30,
                        files=[("files", ("sphere.glb", data))],
                        data={"market": "greenhaven", **form})
    assert answer.status_code == 202, answer.text
    return answer.json()


@pytest.mark.postgres
@pytest.mark.redis
def test_a_model_processed_on_one_node_is_served_by_the_other(two_nodes):
    data = two_nodes.model
    assert len(data) > 5_000_000
    a, b = two_nodes.nodes
    asset = _upload(a, two_nodes.write_headers, data, name="big-sphere")
    with httpx.Client(base_url=a.url, timeout=30) as http:
        asset = processed(http, asset, timeout=60)
    assert asset["status"] == "ready", asset
    row = _row(two_nodes.database_url, asset["id"])
    # When the node recorded it ready (the nodes and the test share this machine's clock).
    ready_at = time.monotonic() - (time.time() - row["finished_at"].timestamp())
    worker = _node_of(two_nodes.nodes, row["claimed_by"])
    other = b if worker is a else a
    files = {f["role"]: f for f in asset["files"]}
    with httpx.Client(base_url=other.url, timeout=30) as http:
        lod0 = http.get(files["lod0"]["url"])
        first = time.monotonic() - ready_at
        for f in asset["files"]:
            answer = http.get(f["url"], headers={"Accept-Encoding": "identity"})
            assert answer.status_code == 200, (f, answer.text)
            assert sha256(answer.content) == f["url"].rsplit("/", 1)[1].split(".")[0]
            assert answer.headers["content-type"] == f["media_type"]
        every = time.monotonic() - ready_at
        # The other node knows the asset too (the cluster told it to reload).
        assert wait_for(lambda: any(x["id"] == asset["id"] for x in http.get(
            "/api/v1/assets", params={"market": "greenhaven"}).json()), timeout=10)
    assert lod0.status_code == 200 and len(lod0.content) == files["lod0"]["bytes"]
    total = sum(f["bytes"] for f in asset["files"])
    print(f"\n{len(data) / 1e6:.1f} MB model: processed on node {worker.name}, node "
          f"{other.name} served lod0 {first * 1000:.0f} ms after it was ready, all "
          f"{len(files)} files ({total / 1e6:.1f} MB) in {every * 1000:.0f} ms")
    assert first < 2.0 and every < 4.0  # issue #22: within 2 s (generous on 2 busy cores)
    # A second request is served from the node's own copy.
    with httpx.Client(base_url=other.url, timeout=30) as http:
        assert http.get(files["lod0"]["url"]).status_code == 200
    assert (two_nodes.tmp / other.name / "assets").is_dir()


@pytest.mark.postgres
@pytest.mark.redis
def test_a_processing_job_survives_the_sigkill_of_its_node(two_nodes):
    data = textured_sphere(64, seed=1)  # processes in a few seconds
    a, _ = two_nodes.nodes
    asset = _upload(a, two_nodes.write_headers, data, name="kill-sphere", size="0.5")
    row = wait_for(lambda: (lambda r: r if r.get("status") == "processing" else None)(
        _row(two_nodes.database_url, asset["id"])), timeout=30, interval=0.02)
    victim = _node_of(two_nodes.nodes, row["claimed_by"])
    survivor = next(n for n in two_nodes.nodes if n is not victim)
    victim.kill()
    killed_at = time.monotonic()
    wait_for(lambda: _row(two_nodes.database_url, asset["id"])["attempts"] == 2, timeout=30,
             interval=0.05)
    reclaimed = time.monotonic() - killed_at
    with httpx.Client(base_url=survivor.url, timeout=30) as http:
        done = processed(http, {**asset, "status": "processing"}, timeout=60)
        assert done["status"] == "ready", done
        took = time.monotonic() - killed_at
        after = _row(two_nodes.database_url, asset["id"])
        assert after["attempts"] == 2 and _node_of(two_nodes.nodes,
                                                    after["claimed_by"]) is survivor
        lod0 = next(f for f in done["files"] if f["role"] == "lod0")
        answer = http.get(lod0["url"])
        assert answer.status_code == 200 and len(answer.content) == lod0["bytes"]
    print(f"\nnode {victim.name} killed mid-processing; node {survivor.name} re-claimed the "
          f"job {reclaimed:.1f} s later and finished it {took:.1f} s after the kill")
    assert reclaimed < 10  # the lease (1.5 s) and a poll (0.75 s), on busy cores
    assert not survivor.tracebacks()


# ---- S3: moto's server on loopback ---------------------------------------------------------

@pytest.fixture(scope="module")
def s3():
    """moto's S3 server on a loopback port, with a bucket (the store-down test, last in
    this module, stops it)."""
    pytest.importorskip("boto3")
    moto_server = pytest.importorskip("moto.server")
    with pytest.MonkeyPatch.context() as env:
        for key, value in (("AWS_ACCESS_KEY_ID", "testing"),
                           ("AWS_SECRET_ACCESS_KEY", "testing"),
                           ("AWS_DEFAULT_REGION", "us-east-1")):
            env.setenv(key, value)
        for key in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
            env.delenv(key, raising=False)
        port = free_port()
        server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port,
                                                verbose=False)
        server.start()
        endpoint = f"http://127.0.0.1:{port}"
        import boto3

        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="market-assets")
        stopped = []
        try:
            yield lambda: stopped.append(server.stop()), endpoint
        finally:
            if not stopped:
                server.stop()


def test_the_s3_store_round_trips_files_by_hash(s3, tmp_path):
    from holobazaar.assets.storage import AssetFiles, S3Store, StoreUnavailable

    _, endpoint = s3
    source = tmp_path / "model.glb"
    source.write_bytes(textured_sphere(900))  # three chunks' worth
    a = AssetFiles(tmp_path / "a", S3Store("s3://market-assets/holo", endpoint))
    b = AssetFiles(tmp_path / "b", S3Store("s3://market-assets/holo", endpoint))
    digest, here = a.store_output(source, "glb")
    assert here.read_bytes() == source.read_bytes()
    assert b.cached(digest, "glb") is None
    there = b.fetch(digest, "glb")
    assert there is not None and there.read_bytes() == source.read_bytes()
    assert b.cached(digest, "glb") == there
    assert b.fetch("0" * 64, "glb") is None
    # Uploads waiting for a job: any node reads them; deleted after.
    key = a.put_upload(source)
    assert b.get_upload(key, tmp_path / "copy") and (tmp_path / "copy").read_bytes() == \
        source.read_bytes()
    a.delete_upload(key)
    assert not b.get_upload(key, tmp_path / "gone")
    # A damaged object is not served: its bytes do not match its hash.
    import boto3

    boto3.client("s3", endpoint_url=endpoint).put_object(
        Bucket="market-assets", Key=f"holo/{digest[:2]}/{digest}.glb", Body=b"not the model",
        Metadata={"sha256": digest})
    c = AssetFiles(tmp_path / "c", S3Store("s3://market-assets/holo", endpoint))
    with pytest.raises(StoreUnavailable, match="does not match its sha256"):
        c.fetch(digest, "glb")
    assert c.cached(digest, "glb") is None


def test_with_the_s3_store_down_uploads_are_refused_and_cached_files_served(s3, tmp_path):
    stop_s3, endpoint = s3
    live = start_server(tmp_path, asset_store="s3://market-assets/prod",
                        asset_s3_endpoint=endpoint)
    try:
        picture = io.BytesIO()
        Image.new("RGB", (64, 32), (200, 60, 40)).save(picture, "PNG")
        with live.client() as http:
            answer = http.post("/api/v1/assets", headers=live.write_headers,
                               files=[("files", ("crate.png", picture.getvalue()))],
                               data={"market": "greenhaven"})
            assert answer.status_code == 202, answer.text
            asset = processed(http, answer.json())
        assert asset["status"] == "ready", asset
        files = {f["role"]: f for f in asset["files"]}
        # As if this node had never had the JPEG: it comes back from the bucket.
        jpeg = files["compat"]["url"].rsplit("/", 1)[1]
        cached = live.settings.data_dir / "assets" / jpeg[:2] / jpeg
        cached.unlink()
        with live.client() as http:
            assert http.get(files["compat"]["url"]).status_code == 200
        assert cached.is_file()
        cached.unlink()
        stop_s3()
        with live.client() as http:
            image = http.get(files["image"]["url"])  # this node's own copy
            assert image.status_code == 200 and len(image.content) == files["image"]["bytes"]
            missing = http.get(files["compat"]["url"])  # not here, and the store is down
            refused = http.post("/api/v1/assets", headers=live.write_headers,
                                files=[("files", ("other.glb", b"glTF"))],
                                data={"market": "greenhaven"})
        assert missing.status_code == 503
        assert "S3 asset store s3://market-assets/prod" in missing.json()["detail"]
        assert refused.status_code == 503, refused.text
        detail = refused.json()["detail"]
        assert "S3 asset store s3://market-assets/prod" in detail and "unreachable" in detail
        assert refused.headers["retry-after"] == "5"
    finally:
        live.stop()


# ---- the PostgreSQL store's blobs ---------------------------------------------------------

@pytest.mark.postgres
def test_postgresql_blobs_are_chunked_and_checked(tmp_path):
    from sqlalchemy import text

    from holobazaar import db
    from holobazaar.assets.storage import CHUNK, AssetFiles, PostgresStore, StoreUnavailable

    source = tmp_path / "big.png"
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (900, 900, 3),
                                                      dtype=np.uint8)).save(buffer, "PNG")
    source.write_bytes(buffer.getvalue())
    assert source.stat().st_size > 2 * CHUNK
    with throwaway_postgres("blobs", migrate=True) as url:
        engine = db.make_engine(url)
        try:
            a = AssetFiles(tmp_path / "a", PostgresStore(engine))
            digest, _ = a.store_output(source, "png")
            a.store_output(source, "png")  # the same content again: stored once
            with engine.connect() as conn:
                chunks = conn.execute(text("SELECT count(*) FROM asset_blob_chunk")).scalar()
                blobs = conn.execute(text("SELECT count(*) FROM asset_blob")).scalar()
            assert blobs == 1 and chunks == -(-source.stat().st_size // CHUNK)
            b = AssetFiles(tmp_path / "b", PostgresStore(engine))
            fetched = b.fetch(digest, "png")
            assert fetched is not None and fetched.read_bytes() == source.read_bytes()
            with engine.begin() as conn:
                conn.execute(text("UPDATE asset_blob_chunk SET data = :d WHERE seq = 1"),
                             {"d": b"x" * CHUNK})
            c = AssetFiles(tmp_path / "c", PostgresStore(engine))
            with pytest.raises(StoreUnavailable, match="does not match"):
                c.fetch(digest, "png")
            assert c.cached(digest, "png") is None
        finally:
            engine.dispose()
    down = AssetFiles(tmp_path / "d", PostgresStore(db.make_engine(
        f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/none?connect_timeout=2")))
    with pytest.raises(StoreUnavailable, match="the PostgreSQL asset store is unreachable"):
        down.check()


def test_asset_store_settings_are_checked():
    from pydantic import ValidationError

    from holobazaar.config import Settings

    assert Settings(asset_store="s3://bucket.example/a/b/").asset_store == \
        "s3://bucket.example/a/b"
    with pytest.raises(ValidationError, match="unknown asset store 'ftp://x'"):
        Settings(asset_store="ftp://x")
    with pytest.raises(ValidationError, match="bucket name"):
        Settings(asset_store="s3://a")
    with pytest.raises(ValidationError, match="give a PostgreSQL --database-url"):
        Settings(asset_store="postgresql", database_url="sqlite:///x.db")


def test_every_command_that_stores_assets_takes_asset_store(tmp_path):
    from typer.testing import CliRunner

    from holobazaar.cli import app

    (tmp_path / "leaf.png").write_bytes(b"")
    for command in (["serve"], ["assets", "ingest", str(tmp_path / "leaf.png")]):
        result = CliRunner().invoke(app, [*command, "--data-dir", str(tmp_path),
                                          "--asset-store", "ftp://elsewhere"])
        assert result.exit_code == 2, (command, result.output)
        assert "--asset-store: Value error, unknown asset store 'ftp://elsewhere'" in \
            result.output


# ---- claims: one node at a time, fenced, a poison job given up ------------------------------

def _one_upload(tmp_path):
    """A migrated SQLite database, the local store, and one upload's processing job (a
    stand-in GLB: the claims, not the pipeline, are under test)."""
    from holobazaar import db
    from holobazaar.assets import jobs
    from holobazaar.assets.pipeline.options import Options
    from holobazaar.assets.storage import AssetFiles

    url = f"sqlite:///{tmp_path / 'h.db'}"
    db.upgrade(url)
    engine = db.make_engine(url)
    files = AssetFiles(tmp_path / "var")
    upload = tmp_path / "var" / "tmp" / "u"
    upload.mkdir(parents=True)
    (upload / "crate.glb").write_bytes(b"glTF-not-really")
    asset, needs = jobs.submit(engine, files, upload, [upload / "crate.glb"], source="s" * 64,
                               market="greenhaven", name="crate", uploaded_by="t",
                               source_name="crate.glb", options=Options())
    assert needs and not upload.exists()
    return engine, files, asset


def test_a_claim_is_one_nodes_until_its_lease_runs_out(tmp_path):
    from datetime import UTC, datetime, timedelta

    from holobazaar.assets import jobs
    from holobazaar.assets.models import StoredAsset
    from holobazaar.assets.pipeline.options import Options
    from holobazaar.db import session_scope

    engine, files, asset = _one_upload(tmp_path)

    first = jobs.claim(engine, "node-1", 60)
    assert first is not None and first.token == 1 and first.job["files"][0][0] == "crate.glb"
    assert jobs.claim(engine, "node-2", 60) is None  # held
    with session_scope(engine) as s:  # node-1 stopped renewing: its lease ran out
        row = s.get(StoredAsset, asset.id)
        row.lease_until = datetime.now(UTC) - timedelta(seconds=1)
        s.add(row)
    second = jobs.claim(engine, "node-2", 60)
    assert second is not None and second.token == 2
    assert not jobs.renew(engine, first, 60) and jobs.renew(engine, second, 60)

    # The same file in another upload (other options): its job needs it after this one.
    again = tmp_path / "var" / "tmp" / "v"
    again.mkdir()
    (again / "crate.glb").write_bytes(b"glTF-not-really")
    other, _ = jobs.submit(engine, files, again, [again / "crate.glb"], source="t" * 64,
                           market="greenhaven", name="crate-big", uploaded_by="t",
                           source_name="crate.glb", options=Options(size=2.0))

    # A job that took its node down three times is given up; its upload is kept for the
    # other job, then deleted when that one is done too.
    with session_scope(engine) as s:
        row = s.get(StoredAsset, asset.id)
        row.lease_until, row.attempts = datetime.now(UTC) - timedelta(seconds=1), 3
        s.add(row)
    fourth = jobs.claim(engine, "node-3", 60)
    assert fourth is not None and fourth.token == 4
    done = jobs.run(engine, files, fourth, lambda job: Options())
    assert done is not None and done.status == "failed"
    assert "interrupted 3 times" in done.error
    assert len(list((tmp_path / "var" / "uploads").iterdir())) == 1
    with session_scope(engine) as s:
        row = s.get(StoredAsset, other.id)
        row.attempts = 3
        s.add(row)
    last = jobs.claim(engine, "node-3", 60)
    assert last is not None and last.asset_id == other.id
    assert jobs.run(engine, files, last, lambda job: Options()).status == "failed"
    assert not any((tmp_path / "var" / "uploads").iterdir())
    engine.dispose()


def test_a_job_whose_upload_is_gone_fails_saying_so(tmp_path):
    from holobazaar.assets import jobs
    from holobazaar.assets.pipeline.options import Options

    engine, files, _ = _one_upload(tmp_path)
    for stored in (tmp_path / "var" / "uploads").iterdir():
        stored.unlink()  # as if the store had lost it
    claimed = jobs.claim(engine, "node-1", 60)
    assert claimed is not None
    done = jobs.run(engine, files, claimed, lambda job: Options())
    assert done is not None and done.status == "failed"
    assert done.error == ("crate.glb: the upload is no longer in the local asset store "
                          f"{tmp_path / 'var' / 'assets'}: upload again")
    assert not any((tmp_path / "var" / "tmp").iterdir())  # no work folder left
    engine.dispose()
