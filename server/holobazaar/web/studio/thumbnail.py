"""The thumbnail of a market's asset, for studio pages (the overview's display pictures, the
display editor's asset picker): the asset pipeline's own for an upload, drawn from the file
(and cached by its hash) for a content asset; 404 when the market has no such asset."""

from __future__ import annotations

from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import FileResponse, RedirectResponse, Response

from holobazaar import db
from holobazaar.web.services import services


async def asset_thumbnail(request: Request, market: str, name: str) -> Response:
    # Loaded on the first thumbnail, not at start: the drawing needs numpy and the pipeline's
    # renderer, which a serving node does not load otherwise (tests/test_db.py checks).
    from holobazaar.assets import thumbnails

    engine = services(request).engine
    stored = await db.call(engine, thumbnails.stored_thumbnail_url, engine, market, name)
    if stored is not None:
        return RedirectResponse(stored, status_code=303)
    content = services(request).scenes.content
    asset = content.assets.get(name) if content is not None else None
    if asset is None:
        return Response("asset not found", status_code=404, media_type="text/plain")
    cache = services(request).settings.data_dir / "thumbnails"
    path = await run_in_threadpool(thumbnails.content_thumbnail, asset.path, asset.sha256,
                                   cache)
    return FileResponse(path, media_type="image/png",
                        headers={"Cache-Control": "private, max-age=300"})
