"""Phone AR files of a display, generated from its composed state and kept on disk by
state hash: `<data-dir>/quicklook/<market>/<display>/<state hash>.<version>.usdz|glb`.

A state is generated once: concurrent first requests for it wait on one task (a future
per file), later requests read the file. A price change is a new state, so a new file and
a new URL; the newest `keep` files of each display and kind stay, older ones go."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import tempfile
import threading
import time
from collections import Counter, OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import orjson
from starlette.concurrency import run_in_threadpool

if TYPE_CHECKING:  # composing needs numpy, Pillow, trimesh: loaded at the first file
    from holobazaar.quicklook.models import AssetReader

log = logging.getLogger(__name__)

Kind = Literal["usdz", "glb"]
# Bumped when the writers change what they make: files of an older version are not served.
VERSION = "v1"
STATE_HASH = re.compile(r"^[0-9a-f]{64}$")
MEDIA_TYPES: dict[str, str] = {"usdz": "model/vnd.usdz+zip", "glb": "model/gltf-binary"}


def file_url(kind: Kind, market: str, display: str, state_hash: str) -> str:
    """The immutable URL of a display's file for one state (quicklook/routes.py)."""
    return f"/d/{market}/{display}.{kind}?state={state_hash}"


class QuickLook:
    def __init__(self, cache_dir: Path, read: AssetReader, keep: int = 16,
                 memory_bytes: int = 64 << 20) -> None:
        self.cache_dir = cache_dir
        self.read = read
        self.keep = keep
        self.generated: Counter[str] = Counter()  # files made, by kind (tests, metrics)
        self.last_ms: dict[str, float] = {}  # how long the last file of each kind took
        self._pending: dict[Path, asyncio.Future[Path]] = {}
        # The files served last, in memory: a cached answer is one write, no file I/O.
        self._memory: OrderedDict[Path, bytes] = OrderedDict()
        self.memory_bytes = memory_bytes
        self._prune_lock = threading.Lock()

    def path(self, kind: Kind, market: str, display: str, state_hash: str) -> Path:
        if not STATE_HASH.match(state_hash):
            raise ValueError("a state hash is 64 lowercase hex digits")
        return self.cache_dir / market / display / f"{state_hash}.{VERSION}.{kind}"

    def cached(self, kind: Kind, market: str, display: str, state_hash: str) -> Path | None:
        """The file of an earlier state, if it is still kept."""
        path = self.path(kind, market, display, state_hash)
        return path if path.is_file() else None

    def content(self, path: Path) -> bytes:
        """A generated file's bytes, from memory when it was served lately."""
        data = self._memory.get(path)
        if data is not None:
            self._memory.move_to_end(path)
            return data
        data = self._memory[path] = path.read_bytes()
        total = sum(len(v) for v in self._memory.values())
        while total > self.memory_bytes and len(self._memory) > 1:
            total -= len(self._memory.popitem(last=False)[1])
        return data

    async def file(self, kind: Kind, market: str, display: str, state: dict[str, Any],
                   state_hash: str) -> Path:
        """The file for this state of the display, generated on first use."""
        path = self.path(kind, market, display, state_hash)
        if path.is_file():
            return path
        pending = self._pending.get(path)
        if pending is None:
            # A copy: the hub may change its state while a worker thread reads this one.
            frozen = orjson.loads(orjson.dumps(state))
            pending = asyncio.ensure_future(
                run_in_threadpool(self._generate, kind, frozen, state_hash, path))
            self._pending[path] = pending
            pending.add_done_callback(lambda _: self._pending.pop(path, None))
        return await asyncio.shield(pending)

    def _generate(self, kind: Kind, state: dict[str, Any], state_hash: str,
                  path: Path) -> Path:
        started = time.perf_counter()
        from holobazaar.quicklook.compose import compose

        comp = compose(state, state_hash, self.read)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".incoming-", suffix=f".{kind}")
        os.close(fd)
        try:
            if kind == "usdz":
                from holobazaar.quicklook.usd import write_usdz

                write_usdz(comp, Path(tmp))
            else:
                from holobazaar.quicklook.glb import write_glb

                Path(tmp).write_bytes(write_glb(comp))
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self.generated[kind] += 1
        self.last_ms[kind] = ms = (time.perf_counter() - started) * 1000
        log.info("display %s/%s: %s for state %s made in %.0f ms (%d bytes)%s",
                 comp.market, comp.display, kind, state_hash[:12], ms, path.stat().st_size,
                 f", left out: {'; '.join(comp.left_out)}" if comp.left_out else "")
        self._prune(path.parent, kind, keep=path)
        return path

    def _prune(self, folder: Path, kind: Kind, keep: Path) -> None:
        """Only the newest `self.keep` files of a display and kind stay on disk."""
        with self._prune_lock:
            files = [p for p in folder.glob(f"*.{kind}") if p != keep]
            files.sort(key=lambda p: p.stat().st_mtime, reverse=True)
            for old in files[self.keep - 1:]:
                old.unlink(missing_ok=True)
