"""Content-addressed files: <data-dir>/assets/<sha256[:2]>/<sha256>.<ext>.

A file is written to a temporary name in the same folder and renamed into place, so a
reader never sees half a file and the same content is stored once."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

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
