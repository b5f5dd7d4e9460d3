"""Authoring API for a display's scene document (issue #18): curators of the market."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Header, Request
from fastapi.responses import JSONResponse

from holobazaar.accounts.dependencies import require_role
from holobazaar.scenes import authoring
from holobazaar.scenes.service import SceneService

router = APIRouter(prefix="/api/v1", tags=["scenes authoring"])
curator = require_role("curator")


def get_scenes(request: Request) -> SceneService:
    return request.app.state.scenes


def _fail(exc: authoring.AuthoringError) -> JSONResponse:
    detail = exc.detail if isinstance(exc.detail, dict) else {"message": exc.detail}
    return JSONResponse({"detail": detail}, status_code=exc.status)


@router.get("/markets/{market}/displays/{display}/source",
            summary="A display's scene document (the YAML file's data), ETag = its revision")
def get_source(market: str, display: str, _=Depends(curator),
               scenes: SceneService = Depends(get_scenes)):
    try:
        doc, etag = authoring.read_source(scenes, market, display)
    except authoring.AuthoringError as exc:
        return _fail(exc)
    return JSONResponse(doc, headers={"ETag": etag, "Cache-Control": "no-store"})


@router.put("/markets/{market}/displays/{display}/source",
            summary="Replace a display's scene document (If-Match required: 428 without, "
                    "412 with a stale etag, 422 with JSON pointers when invalid)")
async def put_source(market: str, display: str, doc: Any = Body(...),
                     if_match: str | None = Header(None), _=Depends(curator),
                     scenes: SceneService = Depends(get_scenes)):
    try:
        etag = await authoring.save_source(scenes, market, display, doc, if_match)
    except authoring.AuthoringError as exc:
        return _fail(exc)
    return JSONResponse({"etag": etag}, headers={"ETag": etag})
