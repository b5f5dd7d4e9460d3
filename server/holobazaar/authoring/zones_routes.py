"""Authoring API for a market's zones (issue #18): curators of the market read and change
the `zones:` of `scenes/<m>/market.yaml` (holobazaar.scenes.zones_authoring)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from holobazaar.accounts.models import Principal
from holobazaar.authoring.routes import _fail, curator
from holobazaar.scenes import zones_authoring
from holobazaar.scenes.authoring import AuthoringError
from holobazaar.scenes.dependencies import scenes_dependency
from holobazaar.scenes.models import Zone
from holobazaar.scenes.service import SceneService

router = APIRouter(prefix="/api/v1", tags=["scenes authoring"])

EXAMPLE_ZONE = {"id": "orchard-row", "name": "Orchard Row",
                "map": {"x": 0, "y": 70, "w": 100, "h": 30}}


class ZoneList(BaseModel):
    zones: list[Zone]
    etag: str


class ZonesSaved(BaseModel):
    etag: str = Field(description="The market file's new revision")


class ZoneMade(ZonesSaved):
    id: str


@router.get("/markets/{market}/zones", response_model=ZoneList,
            summary="The market's zones as market.yaml has them; ETag = the file's revision")
def get_zones(market: str, _: Principal = Depends(curator),
              scenes: SceneService = Depends(scenes_dependency)) -> Any:
    try:
        zones, etag = zones_authoring.read_zones(scenes, market)
    except AuthoringError as exc:
        return _fail(exc)
    return JSONResponse({"zones": zones, "etag": etag},
                        headers={"ETag": etag, "Cache-Control": "no-store"})


@router.put("/markets/{market}/zones", response_model=ZonesSaved,
            summary="Replace the market's zones (If-Match: 428 without, 412 stale with the "
                    "current zones, 422 with JSON pointers such as /zones/0/name)")
async def put_zones(market: str,
                    zones: Annotated[Any, Body(examples=[[EXAMPLE_ZONE]],
                                               description="The whole list, in order "
                                                           "(a zone: id, name, description?, "
                                                           "map? {x, y, w, h} in %)")],
                    if_match: str | None = Header(None), _: Principal = Depends(curator),
                    scenes: SceneService = Depends(scenes_dependency)) -> Any:
    try:
        etag = await zones_authoring.save_zones(scenes, market, zones, if_match)
    except AuthoringError as exc:
        return _fail(exc)
    return JSONResponse({"etag": etag}, headers={"ETag": etag})


@router.post("/markets/{market}/zones", status_code=201, response_model=ZoneMade,
             summary="Add a zone (409 if its id exists; 422 with pointers such as /name)")
async def post_zone(market: str,
                    zone: Annotated[Any, Body(examples=[EXAMPLE_ZONE])],
                    _: Principal = Depends(curator),
                    scenes: SceneService = Depends(scenes_dependency)) -> Any:
    if not isinstance(zone, dict):
        return _fail(AuthoringError(422, {"message": "invalid zone", "errors": [
            {"pointer": "", "message": "expected an object"}]}))
    try:
        etag = await zones_authoring.create_zone(scenes, market, zone)
    except AuthoringError as exc:
        return _fail(exc)
    return JSONResponse({"id": zone.get("id"), "etag": etag}, status_code=201,
                        headers={"ETag": etag})


@router.patch("/markets/{market}/zones/{zone}", response_model=ZonesSaved,
              summary="Change one zone's name, description or map (If-Match: the market "
                      "file's etag; its id stays, displays and shows name it)")
async def patch_zone(market: str, zone: str,
                     changes: Annotated[Any, Body(examples=[{"name": "Orchard Row",
                                                             "map": EXAMPLE_ZONE["map"]}])],
                     if_match: str | None = Header(None), _: Principal = Depends(curator),
                     scenes: SceneService = Depends(scenes_dependency)) -> Any:
    if not isinstance(changes, dict) or not set(changes) <= {"name", "description", "map"}:
        return _fail(AuthoringError(422, {"message": "invalid zone", "errors": [
            {"pointer": "", "message": "send name, description and/or map"}]}))
    try:
        etag = await zones_authoring.update_zone(scenes, market, zone, changes, if_match)
    except AuthoringError as exc:
        return _fail(exc)
    return JSONResponse({"etag": etag}, headers={"ETag": etag})
