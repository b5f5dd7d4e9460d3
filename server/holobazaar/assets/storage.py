"""Stored files, by content hash, in the asset store every node reads.

On each node, <data-dir>/assets/<sha256[:2]>/<sha256>.<ext> holds the files it has (with
their .br/.gz variants beside them): a file is written to a temporary name in the same
folder and renamed into place, so a reader never sees half a file and the same content is
stored once. With the `local` store (one node) that folder is the store. With a shared
store (`postgresql`: blobs in the cluster's database; `s3://bucket/prefix`: an
S3-compatible bucket) it is this node's cache: a file is put in the shared store before
its record says it exists, and a node that lacks it fetches it from there, checking its
hash before it is renamed into the cache (docs/assets.md, "Several nodes").

Uploads waiting to be processed are kept in the same store (key uploads/<sha256>), so
whichever node claims the job (assets/jobs.py) can read them."""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, Protocol, TypeVar
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)

CHUNK = 1 << 20


def root(data_dir: Path) -> Path:
    return data_dir / "assets"


def path_for(data_dir: Path, sha256: str, ext: str) -> Path:
    return root(data_dir) / sha256[:2] / f"{sha256}.{ext}"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def store_file(data_dir: Path, source: Path, ext: str) -> tuple[str, Path]:
    """Copy `source` into the store; returns (sha256, stored path). Idempotent."""
    sha256 = sha256_file(source)
    target = path_for(data_dir, sha256, ext)
    if target.exists():
        return sha256, target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
    try:
        with os.fdopen(fd, "wb") as out, source.open("rb") as src:
            while chunk := src.read(CHUNK):
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return sha256, target


def store_encodings(path: Path, min_saving: float = 0.1) -> list[str]:
    """Brotli and gzip variants beside a stored file (<name>.br, <name>.gz), kept only when
    they save at least `min_saving` of the bytes, so they are served only where they help."""
    import gzip

    import brotli

    data = path.read_bytes()
    kept = []
    for suffix, encode in ((".br", lambda d: brotli.compress(d, quality=9)),
                           (".gz", lambda d: gzip.compress(d, compresslevel=9, mtime=0))):
        target = path.with_name(path.name + suffix)
        if target.exists():
            kept.append(suffix)
            continue
        encoded = encode(data)
        if len(encoded) > len(data) * (1 - min_saving):
            continue
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".incoming-")
        with os.fdopen(fd, "wb") as out:
            out.write(encoded)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
        kept.append(suffix)
    return kept


ENCODINGS = (".br", ".gz")


class StoreUnavailable(Exception):
    """The shared asset store cannot be reached or refused a request (the message names
    the store)."""


class BlobStore(Protocol):
    """A shared store of files by key. `put` is idempotent (content-addressed keys)."""

    label: str

    def put(self, key: str, source: Path, sha256: str) -> None: ...

    def get(self, key: str, out: Any) -> str | None:
        """Write the file into the binary file `out`; its recorded sha256, None if absent."""
        ...

    def delete(self, key: str) -> None: ...

    def check(self) -> None:
        """Raise StoreUnavailable when the store cannot be reached."""
        ...


P = ParamSpec("P")
R = TypeVar("R")


def _outage(method: Callable[Concatenate[Any, P], R]) -> Callable[Concatenate[Any, P], R]:
    """A store method whose failures to reach the store (the store's `outages`) become
    StoreUnavailable, naming the store."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(self, *args, **kwargs)
        except StoreUnavailable:
            raise
        except self.outages as exc:
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
            raise StoreUnavailable(f"{self.label} is unreachable ({reason})") from exc
    return wrapper


# ---- PostgreSQL: blobs in the cluster's database ----------------------------------------

def _blob_tables() -> tuple[Any, Any]:
    from sqlalchemy import (
        BigInteger,
        Column,
        DateTime,
        ForeignKey,
        Integer,
        LargeBinary,
        MetaData,
        String,
        Table,
    )

    metadata = MetaData()  # migration 0021 creates these; not part of SQLModel's metadata
    blob = Table("asset_blob", metadata,
                 Column("key", String(160), primary_key=True),
                 Column("sha256", String(64), nullable=False),
                 Column("bytes", BigInteger, nullable=False),
                 Column("chunks", Integer, nullable=False),
                 Column("created_at", DateTime(timezone=True), nullable=False))
    chunk = Table("asset_blob_chunk", metadata,
                  Column("key", String(160), ForeignKey("asset_blob.key", ondelete="CASCADE"),
                         primary_key=True),
                  Column("seq", Integer, primary_key=True),
                  Column("data", LargeBinary, nullable=False))
    return blob, chunk


class PostgresStore:
    """Files as rows of the shared database: asset_blob (key, sha256, size) and its bytes
    in asset_blob_chunk rows of 1 MiB, all written in one transaction (a reader finds a
    whole file or none) and read back one chunk at a time (a server-side cursor)."""

    label = "the PostgreSQL asset store"

    def __init__(self, engine: Engine) -> None:
        from sqlalchemy.exc import DBAPIError

        self.engine = engine
        self.blob, self.chunk = _blob_tables()
        self.outages: tuple[type[Exception], ...] = (DBAPIError, OSError)

    @_outage
    def put(self, key: str, source: Path, sha256: str) -> None:
        from sqlalchemy import insert, select
        from sqlalchemy.exc import IntegrityError

        size = source.stat().st_size
        try:
            with self.engine.begin() as conn:
                if conn.execute(select(self.blob.c.key).where(self.blob.c.key == key)).first():
                    return
                conn.execute(insert(self.blob).values(
                    key=key, sha256=sha256, bytes=size, chunks=-(-size // CHUNK),
                    created_at=datetime.now(UTC)))
                with source.open("rb") as f:
                    seq = 0
                    while data := f.read(CHUNK):
                        conn.execute(insert(self.chunk).values(key=key, seq=seq, data=data))
                        seq += 1
        except IntegrityError:
            return  # another node put the same content at the same moment

    @_outage
    def get(self, key: str, out: Any) -> str | None:
        from sqlalchemy import select

        with self.engine.connect() as conn:
            row = conn.execute(select(self.blob.c.sha256, self.blob.c.chunks)
                               .where(self.blob.c.key == key)).first()
            if row is None:
                return None
            result = conn.execution_options(stream_results=True, max_row_buffer=2).execute(
                select(self.chunk.c.data).where(self.chunk.c.key == key)
                .order_by(self.chunk.c.seq))
            count = 0
            for (data,) in result:
                out.write(data)
                count += 1
            if count != row.chunks:
                raise StoreUnavailable(f"{self.label}: {key} has {count} of its "
                                       f"{row.chunks} chunks")
            return str(row.sha256)

    @_outage
    def delete(self, key: str) -> None:
        from sqlalchemy import delete

        with self.engine.begin() as conn:
            conn.execute(delete(self.chunk).where(self.chunk.c.key == key))
            conn.execute(delete(self.blob).where(self.blob.c.key == key))

    @_outage
    def check(self) -> None:
        from sqlalchemy import select

        with self.engine.connect() as conn:
            conn.execute(select(self.blob.c.key).limit(1)).all()


# ---- S3-compatible: a bucket every node reads --------------------------------------------

class S3Store:
    """Files as objects of an S3-compatible bucket under `prefix`, their sha256 in the
    object's metadata. boto3 (an optional dependency: pip install 'holobazaar[s3]') finds
    credentials and region the standard AWS way (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
    AWS_DEFAULT_REGION, profiles, instance roles); the endpoint of a store that is not AWS
    is HOLOBAZAAR_ASSET_S3_ENDPOINT (or AWS_ENDPOINT_URL)."""

    def __init__(self, url: str, endpoint: str | None = None) -> None:
        try:
            import boto3
            from botocore.config import Config
            from botocore.exceptions import BotoCoreError, ClientError
        except ImportError:
            raise StoreUnavailable("the S3 asset store needs boto3: pip install "
                                   "'holobazaar[s3]'") from None
        parts = urlsplit(url)
        self.bucket, self.prefix = parts.netloc, parts.path.strip("/")
        self.label = f"the S3 asset store {url}" + (f" at {endpoint}" if endpoint else "")
        self.client = boto3.client("s3", endpoint_url=endpoint or None, config=Config(
            connect_timeout=3, read_timeout=30, retries={"max_attempts": 2, "mode": "standard"}))
        self.client_error = ClientError
        self.outages = (BotoCoreError, ClientError, OSError)

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _missing(self, exc: Exception) -> bool:
        code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
        return code in ("404", "NoSuchKey", "NotFound")

    @_outage
    def put(self, key: str, source: Path, sha256: str) -> None:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
            return
        except self.client_error as exc:
            if not self._missing(exc):
                raise
        # upload_file streams the file (multipart above 8 MiB).
        self.client.upload_file(str(source), self.bucket, self._key(key),
                                ExtraArgs={"Metadata": {"sha256": sha256}})

    @_outage
    def get(self, key: str, out: Any) -> str | None:
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
        except self.client_error as exc:
            if self._missing(exc):
                return None
            raise
        for data in answer["Body"].iter_chunks(CHUNK):
            out.write(data)
        return str(answer.get("Metadata", {}).get("sha256", ""))

    @_outage
    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    @_outage
    def check(self) -> None:
        self.client.head_bucket(Bucket=self.bucket)


# ---- what the rest of the server uses --------------------------------------------------

class AssetFiles:
    """This node's files (<data-dir>/assets) in front of the shared store, if any."""

    def __init__(self, data_dir: Path, shared: BlobStore | None = None) -> None:
        self.data_dir, self.shared = data_dir, shared

    @property
    def label(self) -> str:
        return self.shared.label if self.shared else f"the local asset store {root(self.data_dir)}"

    def check(self) -> None:
        if self.shared is not None:
            self.shared.check()

    def cached(self, sha256: str, ext: str) -> Path | None:
        """The file if this node has it (no database or store call)."""
        path = path_for(self.data_dir, sha256, ext)
        return path if path.is_file() else None

    def store_output(self, source: Path, ext: str) -> tuple[str, Path]:
        """A processed file (and its .br/.gz variants for a GLB) into this node's folder
        and the shared store: (sha256, path here)."""
        sha256, path = store_file(self.data_dir, source, ext)
        variants = store_encodings(path) if ext == "glb" else []
        if self.shared is not None:
            key = _key(sha256, ext)
            for suffix in variants:  # the variants first: a reader of the file finds them
                variant = path.with_name(path.name + suffix)
                self.shared.put(key + suffix, variant, sha256_file(variant))
            self.shared.put(key, path, sha256)
        return sha256, path

    def fetch(self, sha256: str, ext: str) -> Path | None:
        """The file, from this node's folder or else from the shared store (then kept
        here, with its variants); None if the store does not have it."""
        path = self.cached(sha256, ext)
        if path is not None or self.shared is None:
            return path
        key = _key(sha256, ext)
        target = path_for(self.data_dir, sha256, ext)
        for suffix in ENCODINGS if ext == "glb" else ():  # as store_output keeps them
            self._fill(key + suffix, target.with_name(target.name + suffix), None)
        return target if self._fill(key, target, sha256) else None

    def _fill(self, key: str, target: Path, expected: str | None) -> bool:
        assert self.shared is not None
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as raw:
                out = _Hashing(raw)
                recorded = self.shared.get(key, out)
            if recorded is None:
                return False
            if out.digest.hexdigest() != (expected or recorded):
                raise StoreUnavailable(f"{self.label}: {key} does not match its sha256 "
                                       "(damaged in the store?); not served")
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
            return True
        finally:
            Path(tmp).unlink(missing_ok=True)

    # Uploads waiting for a node to process them.

    def put_upload(self, source: Path) -> str:
        sha256 = sha256_file(source)
        if self.shared is not None:
            self.shared.put(f"uploads/{sha256}", source, sha256)
            return sha256
        target = self.data_dir / "uploads" / sha256
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
            os.close(fd)
            try:
                shutil.copyfile(source, tmp)
                os.replace(tmp, target)
            finally:
                Path(tmp).unlink(missing_ok=True)
        return sha256

    def get_upload(self, sha256: str, target: Path) -> bool:
        if self.shared is None:
            source = self.data_dir / "uploads" / sha256
            if not source.is_file():
                return False
            shutil.copyfile(source, target)
            return True
        with target.open("wb") as raw:
            out = _Hashing(raw)
            recorded = self.shared.get(f"uploads/{sha256}", out)
        if recorded is None:
            return False
        if out.digest.hexdigest() != sha256:
            raise StoreUnavailable(f"{self.label}: upload {sha256} does not match its sha256")
        return True

    def delete_upload(self, sha256: str) -> None:
        if self.shared is None:
            (self.data_dir / "uploads" / sha256).unlink(missing_ok=True)
        else:
            self.shared.delete(f"uploads/{sha256}")


class _Hashing:
    """A binary file that hashes what is written to it."""

    def __init__(self, raw: Any) -> None:
        self.raw, self.digest = raw, hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        return self.raw.write(data)


def _key(sha256: str, ext: str) -> str:
    return f"{sha256[:2]}/{sha256}.{ext}"


def open_files(data_dir: Path, store: str, engine: Engine | None = None,
               s3_endpoint: str | None = None) -> AssetFiles:
    """The asset files of a node, for `--asset-store` (checked by Settings)."""
    if store == "postgresql":
        if engine is None:
            raise ValueError("the PostgreSQL asset store needs the database engine")
        return AssetFiles(data_dir, PostgresStore(engine))
    if store.startswith("s3://"):
        return AssetFiles(data_dir, S3Store(store, s3_endpoint or os.environ.get(
            "AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")))
    return AssetFiles(data_dir)
