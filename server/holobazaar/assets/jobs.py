"""Processing jobs, claimed by one node of the cluster at a time.

An upload's files go into the asset store (storage.AssetFiles.put_upload) and its record
carries the job: those files and the curator's options. Any node may claim a queued job
(a conditional UPDATE of its row in the shared database: exactly one node's claim
succeeds), holds it for `lease_ttl` seconds and renews that lease while its worker runs.
When the node dies (SIGKILL, a lost machine) the lease runs out and another node
re-claims the job and processes it from the stored upload; `attempts` counts the claims
and fences a late write of a claim that was lost. A job whose node died MAX_ATTEMPTS
times fails (it may be what kills them). Outputs go into the store before the record says
ready, so every node can serve them (docs/assets.md, "Several nodes")."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, and_, or_, update
from sqlmodel import col, select

from holobazaar import db
from holobazaar.assets import service
from holobazaar.assets.models import AssetOut, StoredAsset
from holobazaar.assets.pipeline import Refused
from holobazaar.assets.pipeline.inputs import Limits
from holobazaar.assets.pipeline.options import Options
from holobazaar.assets.storage import AssetFiles, StoreUnavailable
from holobazaar.db import session_scope

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3


def options_from(settings: Any, *, units: str = "m", up: str = "y",
                 size: float | None = None) -> Options:
    return Options(max_edge=settings.asset_max_edge, lod_edge=settings.asset_lod_edge,
                   units=units, up=up, size=size, timeout=settings.asset_timeout,
                   memory_bytes=settings.asset_memory_mb << 20,
                   limits=Limits(max_file_bytes=settings.asset_max_upload_bytes,
                                 max_total_bytes=2 * settings.asset_max_upload_bytes))


@dataclass
class Claim:
    asset_id: str
    token: int  # the record's `attempts` after this claim
    job: dict[str, Any] | None


def submit(engine: Engine, files: AssetFiles, upload_dir: Path, saved: list[Path], *,
           source: str, market: str | None, name: str, uploaded_by: str | None,
           source_name: str, options: Options) -> tuple[AssetOut, bool]:
    """Put an upload's files into the store and record it with its job (any node may then
    claim it). Returns (asset, needs_processing) as service.register. Removes
    `upload_dir`. Raises StoreUnavailable when the store cannot take the files."""
    try:
        inputs = [[str(p.relative_to(upload_dir)), files.put_upload(p)] for p in saved]
        job = {"files": inputs, "units": options.units, "up": options.up,
               "size": options.size}
        asset, needs_processing = service.register(
            engine, source, market=market, name=name, uploaded_by=uploaded_by,
            source_name=source_name, input_bytes=sum(p.stat().st_size for p in saved),
            job=job)
    finally:
        shutil.rmtree(upload_dir, ignore_errors=True)
    if not needs_processing:
        release_uploads(engine, files, job)
    return asset, needs_processing


def release_uploads(engine: Engine, files: AssetFiles, job: dict[str, Any] | None) -> None:
    """Delete a job's stored upload files that no unfinished job needs (the same file may
    be in several uploads at once: two markets, or other options)."""
    if not job:
        return
    with session_scope(engine) as s:
        pending = s.exec(select(StoredAsset.job).where(
            col(StoredAsset.status).in_(("queued", "processing")))).all()
    needed = {sha256 for other in pending if other for _, sha256 in other.get("files", [])}
    for _, sha256 in job.get("files", []):
        if sha256 in needed:
            continue
        try:
            files.delete_upload(sha256)
        except StoreUnavailable as exc:
            log.warning("asset upload %s not deleted: %s", sha256[:12], exc)


def _claimable(now: datetime) -> Any:
    return or_(col(StoredAsset.status) == "queued",
               and_(col(StoredAsset.status) == "processing",
                    or_(col(StoredAsset.lease_until).is_(None),
                        col(StoredAsset.lease_until) < now)))


def claim(engine: Engine, node: str, ttl: float, asset_id: str | None = None) -> Claim | None:
    """Claim the oldest queued job (or one whose node's lease ran out), or `asset_id`'s:
    None when there is none (or another node's claim won)."""
    now = datetime.now(UTC)
    with session_scope(engine) as s:
        query = select(StoredAsset.id, StoredAsset.attempts).where(_claimable(now))
        if asset_id is not None:
            query = query.where(StoredAsset.id == asset_id)
        candidates = s.exec(query.order_by(col(StoredAsset.created_at)).limit(5)).all()
    for found, attempts in candidates:
        with session_scope(engine) as s:
            result = s.exec(update(StoredAsset).where(
                col(StoredAsset.id) == found, col(StoredAsset.attempts) == attempts,
                _claimable(now)).values(
                status="processing", claimed_by=node, attempts=attempts + 1,
                lease_until=now + timedelta(seconds=ttl)))
            if result.rowcount != 1:
                continue  # another node's claim came first
            asset = s.get(StoredAsset, found)
            assert asset is not None
            return Claim(found, attempts + 1, asset.job)
    return None


def _fenced(token: int) -> Any:
    return and_(col(StoredAsset.attempts) == token, col(StoredAsset.status) == "processing")


def renew(engine: Engine, claimed: Claim, ttl: float) -> bool:
    """Extend the claim's lease; False when it is no longer ours."""
    with session_scope(engine) as s:
        result = s.exec(update(StoredAsset).where(
            col(StoredAsset.id) == claimed.asset_id, _fenced(claimed.token)).values(
            lease_until=datetime.now(UTC) + timedelta(seconds=ttl)))
        return bool(result.rowcount == 1)


def release(engine: Engine, claimed: Claim) -> None:
    """Give an unfinished job back (this node stops): another node may claim it now."""
    with session_scope(engine) as s:
        s.exec(update(StoredAsset).where(
            col(StoredAsset.id) == claimed.asset_id, _fenced(claimed.token)).values(
            status="queued", claimed_by=None, lease_until=None))


def _fail(engine: Engine, claimed: Claim, message: str) -> None:
    with session_scope(engine) as s:
        s.exec(update(StoredAsset).where(
            col(StoredAsset.id) == claimed.asset_id, _fenced(claimed.token)).values(
            status="failed", error=message, finished_at=datetime.now(UTC),
            lease_until=None))


def run(engine: Engine, files: AssetFiles, claimed: Claim,
        options_for: Callable[[dict[str, Any]], Options]) -> AssetOut | None:
    """Process a claimed job (blocking: call from a thread). Its outcome, or None when the
    claim was lost meanwhile (the other node records the outcome)."""
    job = claimed.job
    if not job or not job.get("files"):
        # A record from before jobs were stored (migration 0021): its files are gone.
        _fail(engine, claimed, "interrupted by a server restart: upload again")
        return service.get(engine, claimed.asset_id)
    if claimed.token > MAX_ATTEMPTS:
        _fail(engine, claimed, f"processing was interrupted {MAX_ATTEMPTS} times (its node "
              "stopped, or the asset store failed, while processing it): upload again")
        release_uploads(engine, files, job)
        return service.get(engine, claimed.asset_id)
    work = files.data_dir / "tmp"
    work.mkdir(parents=True, exist_ok=True)
    upload_dir = Path(tempfile.mkdtemp(prefix="job-", dir=work))
    paths = []
    try:
        for name, sha256 in job["files"]:
            target = upload_dir / name
            problem = None
            if not target.resolve().is_relative_to(upload_dir.resolve()):
                problem = f"{name!r} is not a file name inside the upload: upload again"
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                if not files.get_upload(sha256, target):
                    problem = f"{name}: the upload is no longer in {files.label}: upload again"
            if problem is not None:
                shutil.rmtree(upload_dir, ignore_errors=True)
                _fail(engine, claimed, problem)
                return service.get(engine, claimed.asset_id)
            paths.append(target)
    except BaseException:  # the store failed: the job is retried when its lease runs out
        shutil.rmtree(upload_dir, ignore_errors=True)
        raise
    done = service.process_registered(engine, files, claimed.asset_id, upload_dir, paths,
                                      options_for(job), token=claimed.token)
    if done is not None:
        release_uploads(engine, files, job)
    return done


def run_here(engine: Engine, files: AssetFiles, asset_id: str, options: Options) -> AssetOut:
    """The command line's way: claim the job just submitted and process it in this
    process (a lease as long as the worker's time limit, so no renewal is needed); when a
    server's node claimed it first, wait for that node's outcome."""
    import os
    import socket
    import time

    claimed = claim(engine, f"cli:{socket.gethostname()}:{os.getpid()}",
                    options.timeout + 60, asset_id)
    if claimed is not None:
        done = run(engine, files, claimed, lambda job: options)
        if done is not None:
            return done
    while True:
        asset = service.get(engine, asset_id)
        assert asset is not None  # a record is replaced only once it has failed
        if asset.status not in ("queued", "processing"):
            return asset
        time.sleep(0.2)


class AssetJobs:
    """This node's share of the processing: claims jobs while it has a free slot (at once
    when poked after an upload here, otherwise every `interval` seconds) and renews their
    leases while they run."""

    def __init__(self, engine: Engine, files: AssetFiles, node: str, ttl: float,
                 slots: int, options_for: Callable[[dict[str, Any]], Options],
                 finished: Callable[[AssetOut], Awaitable[None]]) -> None:
        self.engine, self.files, self.node, self.ttl = engine, files, node, ttl
        self.slots, self.options_for, self.finished = slots, options_for, finished
        self.interval = max(0.25, ttl / 2)
        self.running: dict[asyncio.Task, Claim] = {}
        self._wake = asyncio.Event()

    def poke(self) -> None:
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                self._wake.clear()
                while len(self.running) < self.slots:
                    try:
                        claimed = await db.call(self.engine, claim, self.engine, self.node,
                                                self.ttl)
                    except Exception as exc:  # the database is away: try again later
                        log.warning("asset jobs: cannot claim (%s)", exc)
                        break
                    if claimed is None:
                        break
                    log.info("asset %s: claimed by %s (attempt %s)", claimed.asset_id[:12],
                             self.node, claimed.token)
                    task = asyncio.create_task(self._work(claimed),
                                               name=f"asset-job-{claimed.asset_id[:12]}")
                    self.running[task] = claimed
                    task.add_done_callback(self._done)
                waits = {asyncio.ensure_future(self._wake.wait()),
                         asyncio.ensure_future(stop.wait())}
                await asyncio.wait(waits, timeout=self.interval,
                                   return_when=asyncio.FIRST_COMPLETED)
                for waiting in waits:
                    waiting.cancel()
        finally:
            await self.close()

    def _done(self, task: asyncio.Task) -> None:
        self.running.pop(task, None)
        self.poke()  # a slot is free

    async def close(self) -> None:
        """Stop: jobs still running go back to the queue for another node."""
        for task, claimed in list(self.running.items()):
            task.cancel()
            with contextlib.suppress(Exception):
                await db.call(self.engine, release, self.engine, claimed)

    async def _work(self, claimed: Claim) -> None:
        heartbeat = asyncio.create_task(self._heartbeat(claimed))
        try:
            done = await db.call(self.engine, run, self.engine, self.files, claimed,
                                 self.options_for)
        except Exception as exc:
            # The store or the database failed mid-job: the lease runs out and a node
            # (this one, perhaps) claims the job again.
            log.warning("asset %s: processing stopped (%s); it is retried",
                        claimed.asset_id[:12], exc)
            return
        finally:
            heartbeat.cancel()
        if done is not None:
            await self.finished(done)

    async def _heartbeat(self, claimed: Claim) -> None:
        while True:
            await asyncio.sleep(self.ttl / 3)
            try:
                if not await db.call(self.engine, renew, self.engine, claimed, self.ttl):
                    log.warning("asset %s: the claim was lost to another node",
                                claimed.asset_id[:12])
                    return
            except Exception as exc:
                log.warning("asset %s: cannot renew the claim (%s)", claimed.asset_id[:12],
                            exc)


def ingest_paths(engine: Engine, store: AssetFiles, paths: list[Path], *,
                 market: str | None, name: str | None, options: Options,
                 uploaded_by: str | None = None) -> AssetOut:
    """The CLI's path, copied into a private upload folder first: a model file with the
    files it references (a .gltf's buffers and images, an .obj's MTL and textures), a zip,
    or a folder (all of it, like a zip)."""
    entry = paths[0]
    base = entry if entry.is_dir() else entry.parent
    sources = service.upload_files(entry)
    for p in sources:
        if p.stat().st_size > options.limits.max_file_bytes:
            raise Refused(f"{p.name}: {p.stat().st_size} bytes, over the limit of "
                          f"{options.limits.max_file_bytes}")
    work = store.data_dir / "tmp"
    work.mkdir(parents=True, exist_ok=True)
    upload_dir = Path(tempfile.mkdtemp(prefix="upload-", dir=work))
    copied: list[Path] = []
    for p in sources:
        rel = p.relative_to(base)
        target = upload_dir / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(p, target)
        copied.append(target)
    source = service.source_id(((str(c.relative_to(upload_dir)), c) for c in copied), options)
    asset, needs_processing = submit(
        engine, store, upload_dir, copied, source=source, market=market,
        name=name or service.asset_name(entry.name), uploaded_by=uploaded_by,
        source_name=entry.name, options=options)
    return run_here(engine, store, asset.id, options) if needs_processing else asset
