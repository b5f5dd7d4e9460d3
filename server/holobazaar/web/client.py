"""Serves the built WebXR client (web-client/dist) under /client/, and tells page templates
which hashed files to load (from the build's manifest)."""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

log = logging.getLogger(__name__)

PREFIX = "/client"
IMMUTABLE = "public, max-age=31536000, immutable"
SHORT = "public, max-age=60"
# Vite names build outputs `<name>-<8+ char hash>.<ext>`; such a file never changes.
HASHED = re.compile(r"-[A-Za-z0-9_-]{8,}\.[a-z0-9]+$")
MANIFEST = Path(".vite") / "manifest.json"
# The WebXR emulator (IWER, @iwer/sem and its room captures): test mode only (issue #18).
EMULATOR = "src/emulate.js"
# The service worker (web-client/src/sw.js, built to dist/sw.js by vite.sw.config.js):
# served at /sw.js so its scope is the whole site; the build's placeholder becomes the list
# of files the display page needs (precached), so every client build is a new worker.
SERVICE_WORKER = "sw.js"
PRECACHE_PLACEHOLDER = "self.__WB_MANIFEST"
OFFLINE_ENTRIES = ("src/display.js",)


class ClientFiles(StaticFiles):
    """StaticFiles with cache headers: hashed names are immutable, the rest short-lived.
    The build's manifest stays private (it is read by the server, not the browser); files
    `hidden` names (paths inside the build) answer 404."""

    def __init__(self, *, hidden: Callable[[], frozenset[str]] = frozenset, **kwargs) -> None:
        super().__init__(**kwargs)
        self.hidden = hidden

    async def get_response(self, path: str, scope: Scope) -> Response:
        if path.replace(os.sep, "/") in self.hidden():
            raise HTTPException(status_code=404)
        return await super().get_response(path, scope)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if "/.vite/" in path or path.endswith("/.built"):
            scope = {**scope, "path": PREFIX + "/__missing__"}
        cache = IMMUTABLE if HASHED.search(path) else SHORT

        async def send_with_cache(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] in (200, 304):
                headers = list(message.get("headers", []))
                headers.append((b"cache-control", cache.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await super().__call__(scope, receive, send_with_cache)


@dataclass
class Entry:
    """What a page needs to load one client entry: its script, CSS and preloads."""

    script: str
    css: list[str] = field(default_factory=list)
    preload: list[str] = field(default_factory=list)


class ClientBuild:
    """The manifest of the build, re-read when it changes (a rebuild while serving)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._stamp: float | None = None
        self._manifest: dict = {}
        self._emulator: frozenset[str] = frozenset()

    @property
    def available(self) -> bool:
        return (self.directory / MANIFEST).is_file()

    def manifest(self) -> dict:
        path = self.directory / MANIFEST
        try:
            stamp = path.stat().st_mtime
        except OSError:
            return {}
        if stamp != self._stamp:
            try:
                self._manifest = json.loads(path.read_text())
            except (OSError, ValueError) as exc:
                log.error("cannot read client manifest %s: %s", path, exc)
                self._manifest = {}
            self._stamp = stamp
            self._emulator = emulator_files(self._manifest)
        return self._manifest

    def emulator_files(self) -> frozenset[str]:
        """The files only the emulator's chunk reaches (see `emulator_files`)."""
        self.manifest()
        return self._emulator

    def service_worker(self) -> str | None:
        """dist/sw.js with its precache list (the display page's files: script, chunks,
        CSS, fonts, the KTX2 transcoder; never the emulator), or None when not built."""
        manifest = self.manifest()
        try:
            text = (self.directory / SERVICE_WORKER).read_text(encoding="utf-8")
        except OSError:
            return None
        if not manifest or PRECACHE_PLACEHOLDER not in text:
            return None
        files = sorted(_reachable(manifest, list(OFFLINE_ENTRIES), avoid=EMULATOR))
        # Hashed names never change: no revision needed (Workbox's precache entry format).
        entries = [{"url": f"{PREFIX}/{f}", "revision": None} for f in files]
        return text.replace(PRECACHE_PLACEHOLDER, json.dumps(entries, separators=(",", ":")), 1)

    def vendor(self, name: str) -> str | None:
        """URL of the folder the build copied package `name` into (vendor/<name>-<version>/,
        vite.config.js), or None when the build has none."""
        found = sorted((self.directory / "vendor").glob(f"{name}-*"))
        return f"{PREFIX}/vendor/{found[-1].name}/" if found else None

    def entry(self, source: str, preload: tuple[str, ...] = ()) -> Entry | None:
        manifest = self.manifest()
        chunk = manifest.get(source)
        if not chunk:
            return None
        css = list(chunk.get("css", []))
        # The entry imports the app dynamically (after the test-mode emulator, if any):
        # preloading it avoids a second round trip on a first visit.
        wanted = [*chunk.get("imports", []), *preload]
        seen: list[str] = []
        while wanted:
            name = wanted.pop(0)
            dep = manifest.get(name)
            if dep is None or dep["file"] in seen:
                continue
            seen.append(dep["file"])
            # A shared chunk's CSS (schemaform.css for the editor and the timeline).
            css.extend(c for c in dep.get("css", []) if c not in css)
            wanted.extend(dep.get("imports", []))
        return Entry(script=f"{PREFIX}/{chunk['file']}", css=[f"{PREFIX}/{c}" for c in css],
                     preload=[f"{PREFIX}/{f}" for f in seen])


def _reachable(manifest: dict, roots: list[str], avoid: str | None = None) -> set[str]:
    """Build files (paths inside the build) of the chunks `roots` and of everything they
    import statically or dynamically, with their CSS and assets; never through `avoid`."""
    files: set[str] = set()
    seen: set[str] = set()
    wanted = list(roots)
    while wanted:
        key = wanted.pop()
        chunk = manifest.get(key)
        if key in seen or key == avoid or not isinstance(chunk, dict):
            continue
        seen.add(key)
        files.add(chunk["file"])
        files.update(chunk.get("css", []), chunk.get("assets", []))
        wanted.extend([*chunk.get("imports", []), *chunk.get("dynamicImports", [])])
    return files


def emulator_files(manifest: dict) -> frozenset[str]:
    """Files reachable from the emulator's chunk and from no other entry without it: what a
    server without `xr_emulator` refuses (chunks shared with the pages, e.g. display.js
    that the emulator imports, stay served)."""
    if EMULATOR not in manifest:
        return frozenset()
    entries = [k for k, c in manifest.items() if k != EMULATOR and c.get("isEntry")]
    return frozenset(_reachable(manifest, [EMULATOR])
                     - _reachable(manifest, entries, avoid=EMULATOR))


def mount(app, directory: Path) -> ClientBuild:
    """Mount the client at /client (gzip-compressed: three.js is most of a first visit).
    The emulator's files are served only with the `xr_emulator` setting (tests)."""
    build = ClientBuild(directory)
    if not directory.is_dir():
        log.warning("web client not built (%s missing): run `make setup` or "
                    "`cd web-client && npm ci && npm run build`", directory)
    hidden = frozenset if app.state.settings.xr_emulator else build.emulator_files
    files = ClientFiles(directory=directory, check_dir=False, hidden=hidden)
    app.mount(PREFIX, GZipMiddleware(files, minimum_size=1024), name="client")

    async def service_worker(request: Request) -> Response:
        """The offline worker (docs/client.md, "Offline"): never cached by HTTP, so a new
        build reaches every visitor on their next visit."""
        text = build.service_worker()
        if text is None:
            return Response("service worker not built\n", status_code=404,
                            media_type="text/plain")
        return Response(text, media_type="text/javascript", headers={
            "cache-control": "no-cache", "service-worker-allowed": "/"})

    app.add_route("/sw.js", service_worker, methods=["GET"], include_in_schema=False)
    return build
