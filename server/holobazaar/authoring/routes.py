"""Authoring API for a display's scene document (issue #18): curators of the market."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Header
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from holobazaar.accounts.dependencies import require_role
from holobazaar.accounts.models import Principal
from holobazaar.scenes import authoring, scheduled_publish
from holobazaar.scenes.dependencies import scenes_dependency
from holobazaar.scenes.service import SceneService

router = APIRouter(prefix="/api/v1", tags=["scenes authoring"])
curator = require_role("curator")


def _fail(exc: authoring.AuthoringError) -> JSONResponse:
    detail = exc.detail if isinstance(exc.detail, dict) else {"message": exc.detail}
    return JSONResponse({"detail": detail}, status_code=exc.status)


@router.get("/markets/{market}/displays/{display}/source",
            summary="A display's scene document (the YAML file's data), ETag = its revision")
def get_source(market: str, display: str, _=Depends(curator),
               scenes: SceneService = Depends(scenes_dependency)):
    try:
        doc, etag = authoring.read_source(scenes, market, display)
    except authoring.AuthoringError as exc:
        return _fail(exc)
    return JSONResponse(doc, headers={"ETag": etag, "Cache-Control": "no-store"})


@router.put("/markets/{market}/displays/{display}/source",
            summary="Replace a display's scene document (If-Match required: 428 without, "
                    "412 with a stale etag, 422 with JSON pointers when invalid)",
            description="The answer's `scheduled` lists the display's pending scheduled "
                        "publishes: each will replace this edit with its pinned document "
                        "(cancel and schedule again to publish this version instead).")
async def put_source(market: str, display: str, doc: Any = Body(...),
                     if_match: str | None = Header(None), who: Principal = Depends(curator),
                     scenes: SceneService = Depends(scenes_dependency)):
    try:
        etag = await authoring.save_source(scenes, market, display, doc, if_match, who.name)
    except authoring.AuthoringError as exc:
        return _fail(exc)
    # A pending scheduled publish will replace this edit: say so (ask to reschedule).
    scheduled = scheduled_publish.edit_notice(scenes, market, display)
    return JSONResponse({"etag": etag, "scheduled": scheduled}, headers={"ETag": etag})


class NewDisplay(BaseModel):
    id: str = Field(max_length=63, description="channel grammar: a-z, 0-9, '-'")
    title: str = Field(min_length=1, max_length=200)
    zone: str = Field(max_length=63)


@router.post("/markets/{market}/displays", status_code=201,
             summary="Create a display from a minimal valid template (409 if it exists)")
async def create_display(market: str, body: NewDisplay, who: Principal = Depends(curator),
                         scenes: SceneService = Depends(scenes_dependency)):
    try:
        etag = await authoring.create(scenes, market, body.id, body.title, body.zone,
                                      who.name)
    except authoring.AuthoringError as exc:
        return _fail(exc)
    return JSONResponse({"id": body.id, "etag": etag}, status_code=201,
                        headers={"ETag": etag})


class Duplicate(BaseModel):
    id: str = Field(max_length=63, description="the new display's id: a-z, 0-9, '-'")
    title: str | None = Field(None, min_length=1, max_length=200,
                              description="[the original's title]")


@router.post("/markets/{market}/displays/{display}/duplicate", status_code=201,
             summary="A new display with the same content (404 unknown display, 409 if the "
                     "new id exists); a revision 'duplicate of <display>'")
async def duplicate_display(market: str, display: str, body: Duplicate,
                            who: Principal = Depends(curator),
                            scenes: SceneService = Depends(scenes_dependency)):
    try:
        etag = await authoring.duplicate(scenes, market, display, body.id, who.name,
                                         body.title)
    except authoring.AuthoringError as exc:
        return _fail(exc)
    return JSONResponse({"id": body.id, "etag": etag}, status_code=201,
                        headers={"ETag": etag})


@router.post("/markets/{market}/displays/{display}/preview",
             summary="Validate a draft and publish it, composed as visitors would see it, "
                     "on the curators-only channel market/<m>/preview/<d>")
async def preview_display(market: str, display: str, doc: Any = Body(...),
                          _=Depends(curator), scenes: SceneService = Depends(scenes_dependency)):
    try:
        channel = await authoring.preview(scenes, market, display, doc)
    except authoring.AuthoringError as exc:
        return _fail(exc)
    return {"channel": channel}


class RevisionSummary(BaseModel):
    number: int
    actor: str
    at: str
    action: str
    etag: str


class RevisionDetail(RevisionSummary):
    diff: str
    document: Any


def _summary(r) -> dict:
    return {"number": r.number, "actor": r.actor, "at": r.at.isoformat(),
            "action": r.action, "etag": r.etag}


@router.get("/markets/{market}/displays/{display}/revisions",
            response_model=list[RevisionSummary], summary="A display's revisions, newest first")
def list_revisions(market: str, display: str, _=Depends(curator),
                   scenes: SceneService = Depends(scenes_dependency)):
    try:
        authoring.display_path(scenes, market, display)
    except authoring.AuthoringError as exc:
        return _fail(exc)
    return [_summary(r) for r in authoring.revisions(scenes, market, display)]


@router.get("/markets/{market}/displays/{display}/revisions/{number}",
            response_model=RevisionDetail, summary="One revision: the document and the diff")
def get_revision(market: str, display: str, number: int, _=Depends(curator),
                 scenes: SceneService = Depends(scenes_dependency)):
    try:
        authoring.display_path(scenes, market, display)
        r = authoring.revision(scenes, market, display, number)
    except authoring.AuthoringError as exc:
        return _fail(exc)
    return dict(_summary(r), diff=r.diff, document=r.document)


@router.post("/markets/{market}/displays/{display}/revisions/{number}/restore",
             summary="Write a revision's document back (If-Match as for PUT .../source)")
async def restore_revision(market: str, display: str, number: int,
                           if_match: str | None = Header(None),
                           who: Principal = Depends(curator),
                           scenes: SceneService = Depends(scenes_dependency)):
    try:
        authoring.display_path(scenes, market, display)
        etag = await authoring.restore(scenes, market, display, number, if_match, who.name)
    except authoring.AuthoringError as exc:
        return _fail(exc)
    scheduled = scheduled_publish.edit_notice(scenes, market, display)  # as for PUT
    return JSONResponse({"etag": etag, "scheduled": scheduled}, headers={"ETag": etag})


@router.delete("/markets/{market}/displays/{display}/source",
               summary="Delete a display's scene file (If-Match; 409 listing what refers "
                       "to it unless ?confirm=true)")
async def delete_source(market: str, display: str, confirm: bool = False,
                        if_match: str | None = Header(None),
                        who: Principal = Depends(curator),
                        scenes: SceneService = Depends(scenes_dependency)):
    try:
        await authoring.delete(scenes, market, display, if_match, confirm, who.name)
    except authoring.AuthoringError as exc:
        return _fail(exc)
    return JSONResponse({"deleted": display})
