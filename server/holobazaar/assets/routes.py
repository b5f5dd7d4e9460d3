"""Assets over HTTP: content-addressed files fetched once and cached forever, uploads
(curator role) processed by the pipeline worker, and their status."""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

from fastapi import APIRouter, Depends, File, Form, HTTPException, Request, UploadFile
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool
from starlette.responses import FileResponse, Response

from holobazaar import db
from holobazaar.accounts.dependencies import require_role
from holobazaar.accounts.models import Principal
from holobazaar.assets import jobs, service
from holobazaar.assets.dependencies import (
    AssetFilesDep,
    AssetJobsDep,
    ClusterDep,
    EngineDep,
    Scenes,
    SettingsDep,
)
from holobazaar.assets.jobs import options_from
from holobazaar.assets.models import AssetOut
from holobazaar.assets.pipeline import Refused
from holobazaar.assets.pipeline.inputs import SIDE_SUFFIXES, SUPPORTED
from holobazaar.assets.pipeline.options import UNITS
from holobazaar.assets.storage import StoreUnavailable
from holobazaar.cluster import Cluster
from holobazaar.scenes.service import SceneService

router = APIRouter(tags=["assets"])
__all__ = ["options_from", "publish", "refresh_scenes", "router"]

IMMUTABLE = "public, max-age=31536000, immutable"
NAME = re.compile(r"^(?P<hash>[0-9a-f]{64})(?P<suffix>\.[a-z0-9]{2,5})$")
FILENAME = re.compile(r"^[^/\\\x00]{1,200}$")
# Already-compressed formats gain nothing from gzip/brotli; GLB (meshopt) does.
COMPRESSIBLE = {".glb"}


def _file_response(request: Request, path: Path, sha256: str, media_type: str) -> Response:
    etag = f'"{sha256}"'
    headers = {"Cache-Control": IMMUTABLE, "ETag": etag, "Vary": "Accept-Encoding"}
    accepted = request.headers.get("accept-encoding", "")
    # A range request is about the identity bytes; encoded variants are whole files.
    if path.suffix in COMPRESSIBLE and "range" not in request.headers:
        for encoding, suffix in (("br", ".br"), ("gzip", ".gz")):
            variant = path.with_name(path.name + suffix)
            if encoding in accepted and variant.is_file():
                etag = f'"{sha256}-{encoding}"'  # strong ETags differ per representation
                if request.headers.get("if-none-match") == etag:
                    return Response(status_code=304, headers={**headers, "ETag": etag})
                return FileResponse(variant, media_type=media_type, headers={
                    **headers, "ETag": etag, "Content-Encoding": encoding})
    if request.headers.get("if-none-match") in (etag, f"W/{etag}"):
        return Response(status_code=304, headers=headers)
    return FileResponse(path, media_type=media_type, headers=headers)


@router.get("/assets/{name}", responses={
    503: {"description": "This node lacks the file and the shared asset store is "
          "unreachable (files a node has are served whatever the store's state)."}})
async def get_asset(name: str, request: Request, scenes: Scenes, files: AssetFilesDep,
                    engine: EngineDep) -> Response:
    match = NAME.match(name)
    if not match:
        raise HTTPException(404, "no such asset")
    content = scenes.content
    asset = content.asset_by_hash(match["hash"]) if content else None
    if asset is not None and asset.suffix == match["suffix"]:
        return _file_response(request, asset.path, asset.sha256, asset.media_type)
    ext = match["suffix"][1:]
    # A file this node has is served without asking the database or the store: stored
    # files are immutable, and a node keeps serving them while the shared store is down.
    path = files.cached(match["hash"], ext)
    if path is not None and ext in service.MEDIA_TYPES:
        return _file_response(request, path, match["hash"], service.MEDIA_TYPES[ext])
    stored = await db.call(engine, service.find_file, engine, match["hash"], ext)
    if stored is None:
        raise HTTPException(404, "no such asset")
    try:
        path = await run_in_threadpool(files.fetch, match["hash"], ext)
    except StoreUnavailable as exc:
        raise store_unavailable(exc) from None
    if path is None:
        raise HTTPException(404, "no such asset")
    return _file_response(request, path, stored.sha256, stored.media_type)


def store_unavailable(exc: StoreUnavailable) -> HTTPException:
    return HTTPException(503, f"{exc}; try again shortly", headers={"Retry-After": "5"})


async def refresh_scenes(scenes: SceneService, engine: Engine,
                         market: str | None = None) -> None:
    """Give the compositor the stored assets and republish (only changes are sent)."""
    scenes.set_stored_assets(await db.call(engine, service.stored_refs, engine))
    if scenes.content is not None:
        await scenes.refresh(market)


async def _save_uploads(files: list[UploadFile], into: Path, cap: int) -> list[Path]:
    """Stream uploads to disk, refusing names that are paths and files over the cap."""
    saved: list[Path] = []
    for upload in files:
        name = upload.filename or ""
        if not FILENAME.match(name) or name in (".", "..") or name.startswith("."):
            raise Refused(f"file name {name!r} is not allowed (a plain file name is needed)")
        suffix = Path(name).suffix.lower()
        if suffix not in set(SUPPORTED) | SIDE_SUFFIXES:
            raise Refused(f"{name}: unsupported file type {suffix or '(none)'}; supported: "
                          f"{', '.join(SUPPORTED)} (and .bin, .mtl, .ktx2 beside a model)")
        target = into / name
        if target.exists():
            raise Refused(f"{name}: uploaded twice")
        written = 0
        with target.open("wb") as out:
            while chunk := await upload.read(1 << 20):
                written += len(chunk)
                if written > cap:
                    raise Refused(f"{name}: over the upload limit of {cap} bytes")
                out.write(chunk)
        saved.append(target)
    if not saved:
        raise Refused("no files in the upload")
    return saved


async def publish(scenes: SceneService, engine: Engine, cluster: Cluster,
                  asset: AssetOut) -> None:
    """A ready asset of a market: recompose its displays, here and on the other nodes."""
    if asset.status != "ready" or asset.market is None:
        return
    await refresh_scenes(scenes, engine, asset.market)
    # The other nodes reload their stored assets too.
    await cluster.notify("assets", {"market": asset.market})


GROWER_IMAGES = (".jpg", ".jpeg", ".png", ".webp")


@router.post("/api/v1/assets", response_model=AssetOut, status_code=202, responses={
    503: {"description": "The shared asset store (PostgreSQL or S3) is unreachable: the "
          "upload is refused, naming the store; try again after Retry-After."}})
async def upload_asset(
    scenes: Scenes, engine: EngineDep, settings: SettingsDep, cluster: ClusterDep,
    asset_files: AssetFilesDep, asset_jobs: AssetJobsDep,
    files: list[UploadFile] = File(..., description="The model (GLB, glTF with its .bin and "
                                   "textures, OBJ with MTL and textures, STL, PLY), an image, "
                                   "or a zip of any of these."),
    market: str | None = Form(None, pattern=r"^[a-z0-9][a-z0-9-]{0,63}$"),
    name: str | None = Form(None, pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$"),
    units: str = Form("m", description="Units of OBJ/STL/PLY coordinates: "
                      + ", ".join(UNITS)),
    up: str = Form("y", pattern=r"^[yz]$", description="Up axis of the source."),
    size: float | None = Form(None, gt=0, le=100, description="Real-world largest dimension "
                              "in metres; the model is scaled to it."),
    principal: Principal = Depends(require_role("curator", "grower")),
) -> AssetOut:
    curator = principal.allows("curator", market)
    if market is not None and not curator and not principal.allows("grower", market):
        raise HTTPException(403, f"no curator role in market {market!r}")
    if not curator and (market is None or len(files) != 1 or Path(
            files[0].filename or "").suffix.lower() not in GROWER_IMAGES):
        # A grower adds photos of their farm to their market: one image file at a time.
        raise HTTPException(403, "a grower uploads one JPEG, PNG or WebP image for their "
                            "market")
    if market is not None and scenes.market(market) is None:
        raise HTTPException(422, f"no market {market!r}")
    if units not in UNITS:
        raise HTTPException(422, f"units must be one of {', '.join(UNITS)}, not {units!r}")
    work = settings.data_dir / "tmp"
    work.mkdir(parents=True, exist_ok=True)
    upload_dir = Path(tempfile.mkdtemp(prefix="upload-", dir=work))
    options = options_from(settings, units=units, up=up, size=size)
    try:
        # A store that is down refuses the upload before it is read, naming the store.
        await run_in_threadpool(asset_files.check)
        saved = await _save_uploads(files, upload_dir, settings.asset_max_upload_bytes)
        source = await run_in_threadpool(
            service.source_id, ((p.name, p) for p in saved), options)
        entry = next((p for p in saved if p.suffix.lower() not in SIDE_SUFFIXES), saved[0])
        # The files go into the asset store with the job: whichever node claims it reads
        # them from there (assets/jobs.py).
        asset, needs_processing = await db.call(
            engine, jobs.submit, engine, asset_files, upload_dir, saved, source=source,
            market=market, name=name or service.asset_name(entry.name),
            uploaded_by=principal.actor, source_name=entry.name, options=options)
    except Refused as exc:
        raise HTTPException(422, str(exc)) from None
    except StoreUnavailable as exc:
        raise store_unavailable(exc) from None
    finally:
        shutil.rmtree(upload_dir, ignore_errors=True)
    if not needs_processing:
        await publish(scenes, engine, cluster, asset)  # ready at once: the market may use it
    else:
        asset_jobs.poke()  # this node claims it now if it has a free slot
    return asset


@router.get("/api/v1/assets", response_model=list[AssetOut])
async def list_assets(engine: EngineDep, market: str | None = None) -> list[AssetOut]:
    return await db.call(engine, service.list_assets, engine, market)


@router.get("/api/v1/assets/{asset_id}", response_model=AssetOut)
async def asset_status(asset_id: str, engine: EngineDep) -> AssetOut:
    if not re.fullmatch(r"[0-9a-f]{64}", asset_id):
        raise HTTPException(404, "no such asset")
    asset = await db.call(engine, service.get, engine, asset_id)
    if asset is None:
        raise HTTPException(404, "no such asset")
    return asset
