"""GET /d/<m>/<d>.usdz (AR Quick Look) and /d/<m>/<d>.glb (Scene Viewer): the display as
it is now, or as it was at `?state=<hash>` (an immutable URL: the display page links the
file of the state it shows and follows the stream to the next one). docs/phones.md."""

from __future__ import annotations

import time

from fastapi import APIRouter, HTTPException, Query, Request
from starlette.responses import FileResponse, RedirectResponse, Response

from holobazaar.channels import display_channel
from holobazaar.quicklook.dependencies import get_quicklook
from holobazaar.quicklook.service import (
    MEDIA_TYPES,
    STATE_HASH,
    VERSION,
    Kind,
    file_url,
)
from holobazaar.scenes.dependencies import Scenes
from holobazaar.scenes.loader import MarketContent
from holobazaar.stream.channel import UnknownChannel

router = APIRouter(tags=["displays"])

IMMUTABLE = "public, max-age=31536000, immutable"
STATE_QUERY = Query(None, description="The state hash the file shows (64 hex digits), as "
                    "the display page links it; without it, the current state.")


def _channels(found: MarketContent, market: str, display: str) -> list[str]:
    """The display's channel and its language variants (docs/protocol.md, Languages)."""
    languages = found.market.market.languages[1:]
    return [display_channel(market, display),
            *(display_channel(market, display, lang) for lang in languages)]


async def _serve(kind: Kind, request: Request, scenes: Scenes, market: str, display: str,
                 state: str | None) -> Response:
    found = scenes.market(market)
    if found is None or display not in found.displays:
        raise HTTPException(404, f"no display {display!r} in market {market!r}")
    snapshots = []
    for channel in _channels(found, market, display):
        try:
            snapshots.append(scenes.hub.snapshot(channel)[2:])
        except UnknownChannel:
            continue
    if not snapshots:
        raise HTTPException(404, f"display {display!r} is not published yet")
    # The state named: the display's current state in the page's language (each language
    # is a state of its own); without one, the market's default language.
    current, current_hash = next(((st, h) for st, h in snapshots if h == state), snapshots[0])
    quicklook = get_quicklook(request)
    headers = {"Cache-Control": "no-cache", "ETag": f'"{current_hash}.{VERSION}"',
               "Content-Disposition": f'inline; filename="{display}.{kind}"'}
    path = None
    if state is not None:
        if state != current_hash:
            # An earlier state still kept is served as it was; else the current one.
            path = quicklook.cached(kind, market, display, state) \
                if STATE_HASH.match(state) else None
            if path is None:
                return RedirectResponse(file_url(kind, market, display, current_hash), 307,
                                        headers={"Cache-Control": "no-store"})
        headers.update({"Cache-Control": IMMUTABLE, "ETag": f'"{state}.{VERSION}"'})
    if request.headers.get("if-none-match") == headers["ETag"]:
        return Response(status_code=304, headers=headers)
    started = time.perf_counter()
    if path is None:
        path = await quicklook.file(kind, market, display, current, current_hash)
    # How long the file took here (generating it, or finding it in the cache): bench/assets.py
    headers["Server-Timing"] = f"quicklook;dur={(time.perf_counter() - started) * 1000:.1f}"
    if "range" in request.headers:  # FileResponse answers ranges
        return FileResponse(path, media_type=MEDIA_TYPES[kind], headers=headers)
    return Response(quicklook.content(path), media_type=MEDIA_TYPES[kind], headers=headers)


def _responses(kind: Kind) -> dict[int | str, dict]:
    return {200: {"content": {MEDIA_TYPES[kind]: {}}},
            304: {"description": "unchanged (If-None-Match)"},
            307: {"description": "that state is no longer kept: the current file"},
            404: {"description": "no such display"}}


@router.get("/d/{market}/{display}.usdz", response_class=FileResponse,
            responses=_responses("usdz"))
async def display_usdz(request: Request, scenes: Scenes, market: str, display: str,
                       state: str | None = STATE_QUERY) -> Response:
    """The display for iOS AR Quick Look (USDZ): models, price labels and panels, the farm
    card; today's prices also in the file's customData (`holobazaar.prices`)."""
    return await _serve("usdz", request, scenes, market, display, state)


@router.get("/d/{market}/{display}.glb", response_class=FileResponse,
            responses=_responses("glb"))
async def display_glb(request: Request, scenes: Scenes, market: str, display: str,
                      state: str | None = STATE_QUERY) -> Response:
    """The whole display as one GLB, for Android's Scene Viewer (which opens one file)."""
    return await _serve("glb", request, scenes, market, display, state)
