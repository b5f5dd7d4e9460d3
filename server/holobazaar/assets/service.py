"""Stored assets: identify an upload, process it in the worker, store its outputs by content
hash and record them. Plain functions over an engine and a data directory."""

from __future__ import annotations

import functools
import hashlib
import re
import shutil
import tempfile
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from holobazaar.assets import storage
from holobazaar.assets.models import AssetFileOut, AssetOut, StoredAsset, StoredAssetFile
from holobazaar.assets.pipeline import Refused
from holobazaar.assets.pipeline.inputs import referenced_files
from holobazaar.assets.pipeline.options import Options
from holobazaar.assets.worker import run_in_worker
from holobazaar.db import session_scope
from holobazaar.scenes.compositor import AssetRef, LodRef

MEDIA_TYPES = {"glb": "model/gltf-binary", "png": "image/png", "jpg": "image/jpeg",
               "webp": "image/webp"}
NAME = re.compile(r"[^a-z0-9_-]+")


def asset_name(source_name: str) -> str:
    """A scene-usable name from a file name: `Red Pumpkin.glb` -> `red-pumpkin`."""
    stem = Path(source_name).stem.lower()
    name = NAME.sub("-", stem).strip("-_")[:62]
    return name if name and name[0].isalnum() else f"asset-{name}".strip("-")[:62] or "asset"


def source_id(files: Iterable[tuple[str, Path]], options: Options) -> str:
    """sha256 of the upload (every file's name and content hash, in name order) and of the
    options that shape its outputs: the same source is processed once."""
    digest = hashlib.sha256()
    for name, path in sorted(files):
        digest.update(name.encode() + b"\0" + storage.sha256_file(path).encode() + b"\n")
    digest.update(repr((options.units, options.up, options.size, options.max_edge,
                        options.lod_edge, options.ratios, options.min_triangles,
                        options.quality, options.meshopt_level)).encode())
    return digest.hexdigest()


def record_id(source: str, market: str | None, name: str) -> str:
    """The id of a market's upload: its own record, whatever other markets uploaded."""
    return hashlib.sha256(f"{source}\0{market or ''}\0{name}".encode()).hexdigest()


def to_out(asset: StoredAsset, files: list[StoredAssetFile]) -> AssetOut:
    return AssetOut(
        id=asset.id, market=asset.market, name=asset.name, source_name=asset.source_name,
        kind=asset.kind, status=asset.status, error=asset.error, input_bytes=asset.input_bytes,
        output_bytes=asset.output_bytes, triangles=asset.triangles,
        processing_ms=asset.processing_ms, bbox=asset.bbox, warnings=asset.warnings,
        files=[AssetFileOut(role=f.role, url=f"/assets/{f.sha256}.{f.ext}",
                            media_type=f.media_type, bytes=f.bytes, triangles=f.triangles)
               for f in sorted(files, key=lambda f: f.role)])


def get(engine: Engine, asset_id: str) -> AssetOut | None:
    with session_scope(engine) as s:
        asset = s.get(StoredAsset, asset_id)
        return None if asset is None else to_out(asset, _files(s, asset_id))


def list_assets(engine: Engine, market: str | None = None) -> list[AssetOut]:
    with session_scope(engine) as s:
        query = select(StoredAsset)
        if market is not None:
            query = query.where(StoredAsset.market == market)
        assets = s.exec(query.order_by(col(StoredAsset.created_at))).all()
        files = s.exec(select(StoredAssetFile)).all()
    by_asset: dict[str, list[StoredAssetFile]] = {}
    for f in files:
        by_asset.setdefault(f.asset_id, []).append(f)
    return [to_out(a, by_asset.get(a.id, [])) for a in assets]


def find_file(engine: Engine, sha256: str, ext: str) -> StoredAssetFile | None:
    with session_scope(engine) as s:
        return s.exec(select(StoredAssetFile).where(
            StoredAssetFile.sha256 == sha256, StoredAssetFile.ext == ext)).first()


def register(engine: Engine, source: str, *, market: str | None, name: str,
             uploaded_by: str | None, source_name: str,
             input_bytes: int, job: dict[str, Any] | None = None) -> tuple[AssetOut, bool]:
    """Record a market's upload (with its processing job, assets/jobs.py). Returns
    (asset, needs_processing). The same upload to the same market and name is the record
    already there (a failed one is retried); a source another record already processed is
    ready at once, sharing that record's stored files; otherwise the new record is queued
    for processing."""
    attempt = functools.partial(_register, engine, source, market=market, name=name,
                                uploaded_by=uploaded_by, source_name=source_name,
                                input_bytes=input_bytes, job=job)
    try:
        return attempt()
    except IntegrityError:
        # The same upload twice at the same moment: the other request won.
        return attempt()


def _register(engine: Engine, source: str, *, market: str | None, name: str,
              uploaded_by: str | None, source_name: str,
              input_bytes: int, job: dict[str, Any] | None) -> tuple[AssetOut, bool]:
    asset_id = record_id(source, market, name)
    with session_scope(engine) as s:
        existing = s.get(StoredAsset, asset_id)
        if existing is not None and existing.status != "failed":
            return to_out(existing, _files(s, asset_id)), False
        if existing is not None:
            s.delete(existing)
            s.flush()
        asset = StoredAsset(id=asset_id, source=source, market=market, name=name,
                            uploaded_by=uploaded_by, source_name=source_name, kind="model",
                            status="queued", input_bytes=input_bytes, warnings=[],
                            created_at=datetime.now(UTC), job=job)
        done = s.exec(select(StoredAsset).where(
            StoredAsset.source == source, StoredAsset.status == "ready",
            StoredAsset.id != asset_id)).first()
        files: list[StoredAssetFile] = []
        if done is not None:  # processed before (for any market): share its files
            for key in ("kind", "warnings", "bbox", "processing_ms", "triangles",
                        "output_bytes"):
                setattr(asset, key, getattr(done, key))
            asset.status, asset.finished_at, asset.job = "ready", datetime.now(UTC), None
            files = [StoredAssetFile(**{**f.model_dump(), "asset_id": asset_id})
                     for f in s.exec(select(StoredAssetFile).where(
                         StoredAssetFile.asset_id == done.id)).all()]
        s.add(asset)
        s.flush()  # the record before its files (their foreign key)
        s.add_all(files)
    return to_out(asset, files), done is None


def _registered(s: Session, asset_id: str) -> StoredAsset:
    """The record `register` made (a record is replaced only once it has failed)."""
    asset = s.get(StoredAsset, asset_id)
    if asset is None:
        raise LookupError(f"asset {asset_id}: no record")
    return asset


def _registered_out(engine: Engine, asset_id: str) -> AssetOut:
    with session_scope(engine) as s:
        return to_out(_registered(s, asset_id), _files(s, asset_id))


def _files(s: Session, asset_id: str) -> list[StoredAssetFile]:
    return list(s.exec(select(StoredAssetFile).where(StoredAssetFile.asset_id == asset_id)))


def _claimed(s: Session, asset_id: str, token: int) -> StoredAsset | None:
    """The record while the job's claim is still `token` (assets/jobs.py), else None."""
    asset = _registered(s, asset_id)
    return asset if asset.status == "processing" and asset.attempts == token else None


def _set_status(engine: Engine, asset_id: str, token: int, **values) -> None:
    with session_scope(engine) as s:
        asset = _claimed(s, asset_id, token)
        if asset is None:
            return
        for key, value in values.items():
            setattr(asset, key, value)
        s.add(asset)


def process_registered(engine: Engine, store: storage.AssetFiles, asset_id: str,
                       upload_dir: Path, files: list[Path], options: Options, *,
                       token: int) -> AssetOut | None:
    """Run the worker on a claimed upload (its claim's `token`, assets/jobs.py) and store
    the outcome. Outputs are put into the asset store first and recorded in one
    transaction; a refusal records only the message. None when the claim was lost
    meanwhile (the other node's outcome counts). Removes `upload_dir`."""
    out_dir = Path(tempfile.mkdtemp(prefix="out-", dir=upload_dir.parent))
    try:
        try:
            result = run_in_worker(files, upload_dir, out_dir, options)
        except Refused as exc:
            # The work folders go before the status says "failed": whoever sees the outcome
            # finds nothing of the upload left.
            shutil.rmtree(out_dir, ignore_errors=True)
            shutil.rmtree(upload_dir, ignore_errors=True)
            _set_status(engine, asset_id, token, status="failed", error=str(exc),
                        finished_at=datetime.now(UTC), lease_until=None)
            return _registered_out(engine, asset_id)
        rows: list[StoredAssetFile] = []
        for out in result["outputs"]:
            path = Path(out["file"])
            ext = path.suffix.lstrip(".").lower()
            sha256, stored = store.store_output(path, ext)
            rows.append(StoredAssetFile(asset_id=asset_id, role=out["role"], sha256=sha256,
                                        ext=ext, media_type=MEDIA_TYPES[ext],
                                        bytes=stored.stat().st_size,
                                        triangles=out["triangles"]))
        top = next((r for r in rows if r.role in ("lod0", "image")), None)
        with session_scope(engine) as s:
            claimed = _claimed(s, asset_id, token)
            if claimed is None:
                return None
            asset = claimed
            asset.kind = result["kind"]
            asset.source_name = result["entry"][-255:]
            asset.status = "ready"
            asset.error = None
            asset.warnings = result["warnings"]
            asset.bbox = result["bbox"]
            asset.processing_ms = result["ms"]
            asset.triangles = top.triangles if top else 0
            asset.output_bytes = top.bytes if top else 0
            asset.finished_at = datetime.now(UTC)
            asset.lease_until = asset.job = None
            s.add(asset)
            for row in rows:
                s.add(row)
        return _registered_out(engine, asset_id)
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
        shutil.rmtree(upload_dir, ignore_errors=True)


def upload_files(entry: Path) -> list[Path]:
    """What `ingest PATH` uploads: a folder's files (not hidden ones), or the file and
    the files it references (never its folder's other files: a PNG beside a .gltf that
    the glTF does not name is not part of the asset, nor of its id)."""
    if entry.is_dir():
        files = [p for p in sorted(entry.rglob("*")) if p.is_file()
                 and not any(part.startswith(".") for part in p.relative_to(entry).parts)]
        if not files:
            raise Refused(f"{entry.name}: the folder has no files")
        return files
    return [entry, *referenced_files(entry)]


def warnings_by_name(engine: Engine, market: str) -> dict[str, list[dict]]:
    """The pipeline's warnings (validator warnings among them) of a market's ready assets
    by name, the newest upload of a name winning as in `stored_refs`: for the library."""
    return {asset.name: asset.warnings for asset in list_assets(engine, market)
            if asset.status == "ready"}


def stored_refs(engine: Engine) -> dict[str, dict[str, AssetRef]]:
    """Ready models and images of each market by name, for the compositor (the newest
    upload of a name wins)."""
    refs: dict[str, dict[str, AssetRef]] = {}
    for asset in list_assets(engine):
        if asset.status != "ready" or asset.market is None:
            continue
        files = {f.role: f for f in asset.files}
        top = files.get("lod0") or files.get("image")
        if top is None:
            continue
        lods = tuple(LodRef(f.url, f.triangles, f.bytes) for role, f in sorted(files.items())
                     if role.startswith("lod"))
        compat = files.get("compat")
        refs.setdefault(asset.market, {})[asset.name] = AssetRef(
            asset.name, top.url, top.media_type, top.bytes, lods,
            compat.url if compat else None)
    return refs
