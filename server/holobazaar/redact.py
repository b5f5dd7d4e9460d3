"""Keep server paths and internal exception texts out of what clients see.

`without_paths` is for messages that quote another library's exception (Pillow's
"cannot identify image file '/srv/var/tmp/upload-…/x.png'"): every absolute path becomes
its last part. `install_error_guard` is the general guard: HTTP error details and
unhandled exceptions never carry the server's folders (data, content, temp, install)."""

from __future__ import annotations

import re
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

# An absolute POSIX or Windows path, not part of a URL ("https://host/a/b") or a relative
# path ("a/b"); quoted or bare, up to whitespace or a quote.
_PATH = re.compile(r"""(?<![\w:/.~-])(?:[A-Za-z]:\\|/)(?:[^\s'"\\/]+[\\/])*[^\s'"\\/]*""")


def _last_part(match: re.Match[str]) -> str:
    text = match.group(0).rstrip("/\\")
    name = re.split(r"[\\/]", text)[-1] if text else ""
    return name or "…"


def without_paths(text: object) -> str:
    """The text with every absolute path cut to its last part (a file name)."""
    return _PATH.sub(_last_part, str(text))


def exception_text(exc: BaseException) -> str:
    """An exception's message fit for a client: no paths (OSError: its strerror only)."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return without_paths(exc)


def server_roots(*extra: Path | None) -> list[str]:
    roots = {str(Path(tempfile.gettempdir()).resolve()), sys.prefix,
             str(Path(__file__).resolve().parents[1])}
    for path in extra:
        if path is not None:
            roots.add(str(path))
            roots.add(str(path.resolve()))
    return sorted((r for r in roots if len(r) > 1), key=len, reverse=True)


def scrub(text: str, roots: Iterable[str]) -> str:
    for root in roots:
        if root in text:
            text = text.replace(root, "…")
    return text


def install_error_guard(app: Any, *folders: Path | None) -> None:
    """HTTP error details with a server folder in them lose it. (Unhandled exceptions
    already answer a bare "Internal Server Error"; their text goes to the log only.)"""
    # Imported here: the asset worker imports this module and never needs a web stack.
    from fastapi import HTTPException, Request
    from fastapi.exception_handlers import http_exception_handler
    from starlette.exceptions import HTTPException as StarletteHTTPException
    from starlette.responses import Response

    roots = server_roots(*folders)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if isinstance(exc.detail, str) and any(root in exc.detail for root in roots):
            exc = HTTPException(exc.status_code, scrub(exc.detail, roots), exc.headers)
        return await http_exception_handler(request, exc)

    app.add_exception_handler(StarletteHTTPException, http_error)
