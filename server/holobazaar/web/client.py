"""Serves the built WebXR client (web-client/dist) under /client/, and tells page templates
which hashed files to load (from the build's manifest)."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

from starlette.middleware.gzip import GZipMiddleware
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

log = logging.getLogger(__name__)

PREFIX = "/client"
IMMUTABLE = "public, max-age=31536000, immutable"
SHORT = "public, max-age=60"
# Vite names build outputs `<name>-<8+ char hash>.<ext>`; such a file never changes.
HASHED = re.compile(r"-[A-Za-z0-9_-]{8,}\.[a-z0-9]+$")
MANIFEST = Path(".vite") / "manifest.json"


class ClientFiles(StaticFiles):
    """StaticFiles with cache headers: hashed names are immutable, the rest short-lived.
    The build's manifest stays private (it is read by the server, not the browser)."""

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
        return self._manifest

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


def mount(app, directory: Path) -> None:
    """Mount the client at /client (gzip-compressed: three.js is most of a first visit)."""
    app.state.client = ClientBuild(directory)
    if not directory.is_dir():
        log.warning("web client not built (%s missing): run `make setup` or "
                    "`cd web-client && npm ci && npm run build`", directory)
    files = ClientFiles(directory=directory, check_dir=False)
    app.mount(PREFIX, GZipMiddleware(files, minimum_size=1024), name="client")
