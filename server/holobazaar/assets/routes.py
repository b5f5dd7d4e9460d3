"""Content-addressed asset serving: fetched once, cached forever."""

from __future__ import annotations

import re

from fastapi import APIRouter, HTTPException, Request
from starlette.responses import FileResponse, Response

router = APIRouter(tags=["assets"])

IMMUTABLE = "public, max-age=31536000, immutable"
NAME = re.compile(r"^(?P<hash>[0-9a-f]{64})(?P<suffix>\.[a-z0-9]{2,5})$")


@router.get("/assets/{name}")
def get_asset(name: str, request: Request) -> Response:
    match = NAME.match(name)
    content = request.app.state.scenes.content
    asset = content.asset_by_hash(match["hash"]) if match and content else None
    if asset is None or asset.suffix != match["suffix"]:
        raise HTTPException(404, "no such asset")
    etag = f'"{asset.sha256}"'
    if request.headers.get("if-none-match") in (etag, f"W/{etag}"):
        return Response(status_code=304, headers={"ETag": etag, "Cache-Control": IMMUTABLE})
    return FileResponse(asset.path, media_type=asset.media_type,
                        headers={"Cache-Control": IMMUTABLE, "ETag": etag})
