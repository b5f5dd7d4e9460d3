"""Authoring API for a show's cue list (issue #18): performers and curators of the market
read, check and write `scenes/<m>/shows/<show>.yaml` (holobazaar.shows.authoring), and
rehearse a cue on the preview channels (ShowService.rehearse)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from holobazaar.accounts.dependencies import require_role
from holobazaar.accounts.models import Principal
from holobazaar.authoring.routes import _fail
from holobazaar.scenes.authoring import AuthoringError
from holobazaar.scenes.dependencies import scenes_dependency
from holobazaar.scenes.service import SceneService
from holobazaar.shows import authoring
from holobazaar.shows.dependencies import get_shows
from holobazaar.shows.models import CueNumber
from holobazaar.shows.runner import ShowError

router = APIRouter(prefix="/api/v1", tags=["scenes authoring"])
show_staff = require_role("performer", "curator")
BASE = "/markets/{market}/shows/{show}"


class TimelineEntry(BaseModel):
    number: str
    name: str
    start: float
    end: float
    child: bool
    index: int


class CheckResult(BaseModel):
    errors: list[dict[str, str]]
    timeline: list[TimelineEntry]


class ShowSource(BaseModel):
    document: dict[str, Any] = Field(description="The show file's data, as JSON")
    etag: str
    timeline: list[TimelineEntry]


class Saved(BaseModel):
    etag: str
    timeline: list[TimelineEntry]


class Rehearsal(BaseModel):
    cues: list[str] = Field(description="The ids of the cue frames sent")
    channels: list[str] = Field(description="The preview channels they went to")
    start_time: float = Field(description="When they play (server time, ms)")


@router.get(BASE + "/source", response_model=ShowSource,
            summary="A show's document (the YAML file's data) and its timeline; ETag = the "
                    "file's revision")
def get_show_source(market: str, show: str, _: Principal = Depends(show_staff),
                    scenes: SceneService = Depends(scenes_dependency)) -> Any:
    try:
        doc, etag = authoring.read_show(scenes, market, show)
    except AuthoringError as exc:
        return _fail(exc)
    found = scenes.market(market)
    timeline = authoring.cue_timeline(found.shows[show]) if found is not None else []
    return JSONResponse({"document": doc, "etag": etag, "timeline": timeline},
                        headers={"ETag": etag, "Cache-Control": "no-store"})


@router.post(BASE + "/check", response_model=CheckResult,
             summary="Check a draft of the show as a save would (errors as JSON pointers, "
                     "e.g. /show/cues/2/pre_wait) and compute its timeline; writes nothing")
def check_show(market: str, show: str, doc: Annotated[Any, Body()],
               _: Principal = Depends(show_staff),
               scenes: SceneService = Depends(scenes_dependency)) -> Any:
    try:
        authoring.show_path(scenes, market, show)
    except AuthoringError as exc:
        return _fail(exc)
    parsed, errors = authoring.check(scenes, market, show, doc)
    return {"errors": errors,
            "timeline": authoring.cue_timeline(parsed) if parsed is not None else []}


@router.put(BASE + "/source", response_model=Saved,
            summary="Replace a show's document (If-Match required: 428 without, 412 with a "
                    "stale etag and the current document, 422 with JSON pointers)")
async def put_show_source(market: str, show: str, doc: Annotated[Any, Body()],
                          if_match: str | None = Header(None),
                          _: Principal = Depends(show_staff),
                          scenes: SceneService = Depends(scenes_dependency)) -> Any:
    try:
        etag = await authoring.save_show(scenes, market, show, doc, if_match)
    except AuthoringError as exc:
        return _fail(exc)
    found = scenes.market(market)
    timeline = authoring.cue_timeline(found.shows[show]) if found is not None else []
    return JSONResponse({"etag": etag, "timeline": timeline}, headers={"ETag": etag})


class RehearseBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    number: CueNumber
    document: Any = Field(None, description="A draft of the show (as for PUT .../source) "
                                            "to rehearse instead of the saved file; "
                                            "checked first (422 with JSON pointers)")


@router.post(BASE + "/rehearse", response_model=Rehearsal,
             summary="Fire one cue (and its group) on the preview channels of the show's "
                     "displays only: staff previewing on their own device see it, visitors "
                     "and the live show do not")
async def rehearse(request: Request, market: str, show: str, body: RehearseBody,
                   _: Principal = Depends(show_staff),
                   scenes: SceneService = Depends(scenes_dependency)) -> Any:
    draft = None
    try:
        if body.document is not None:
            authoring.show_path(scenes, market, show)
            draft, errors = authoring.check(scenes, market, show, body.document)
            if errors:
                raise AuthoringError(422, {"message": "invalid show", "errors": errors})
        return await get_shows(request).rehearse(market, show, body.number, draft)
    except AuthoringError as exc:
        return _fail(exc)
    except ShowError as exc:
        return _fail(AuthoringError(exc.status, exc.message))
