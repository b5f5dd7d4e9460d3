"""Show control API: performers (or admins) fire and stop cues; docs/shows.md."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from holobazaar.accounts.dependencies import require_role
from holobazaar.scenes.models import scene_json_schema
from holobazaar.shows.dependencies import Shows
from holobazaar.shows.models import CueNumber, ShowFile
from holobazaar.shows.runner import ShowError, ShowRunner
from holobazaar.shows.service import ShowService
from holobazaar.shows.starts import console_state

router = APIRouter(prefix="/api/v1/shows", tags=["shows"])
# The scene files' schema covers show files too, and shows build on scenes: served here.
schema_router = APIRouter(prefix="/api/v1", tags=["scenes"])


@schema_router.get("/schema/scene")
def scene_schema() -> dict:
    return scene_json_schema(ShowFile)
performer = Depends(require_role("performer"))


class GoBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cue: str | None = Field(
        None, max_length=200,
        description="The standing-by cue's id as the console saw it: a GO for a cue that "
                    "has already fired (two performers at once) is refused, not repeated.")


class StandbyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    number: CueNumber | None = Field(None, description="Cue to stand by [the first].")


class JumpBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    number: CueNumber
    go: bool = Field(False, description="Fire it at once.")


def _runner(shows: ShowService, market: str, show: str) -> ShowRunner:
    try:
        return shows.runner(market, show)
    except ShowError as exc:
        raise HTTPException(exc.status, exc.message) from None


async def _run(shows: ShowService, runner: ShowRunner, operation) -> dict[str, Any]:
    try:
        result = await operation
    except ShowError as exc:
        raise HTTPException(exc.status, exc.message) from None
    state = await console_state(shows, runner)
    if result:
        state["result"] = result
    return state


@router.get("/{market}", dependencies=[performer])
async def list_shows(service: Shows, market: str) -> list[dict[str, Any]]:
    try:
        shows = service.shows(market)
    except ShowError as exc:
        raise HTTPException(exc.status, exc.message) from None
    out = []
    for show_id, show in sorted(shows.items()):
        runner = service.runners.get((market, show_id))
        out.append({"id": show_id, "title": show.title, "zone": show.zone,
                    "cues": len(show.cues),
                    "status": runner.status() if runner else "ready"})
    return out


@router.get("/{market}/{show}", dependencies=[performer])
async def show_state(shows: Shows, market: str, show: str) -> dict[str, Any]:
    return await console_state(shows, _runner(shows, market, show))


@router.post("/{market}/{show}/go", dependencies=[performer])
async def go(shows: Shows, market: str, show: str,
             body: GoBody | None = None) -> dict[str, Any]:
    runner = _runner(shows, market, show)
    return await _run(shows, runner, runner.go(body.cue if body else None))


@router.post("/{market}/{show}/standby", dependencies=[performer])
async def standby(shows: Shows, market: str, show: str,
                  body: StandbyBody | None = None) -> dict[str, Any]:
    runner = _runner(shows, market, show)
    return await _run(shows, runner, runner.standby_cue(body.number if body else None))


@router.post("/{market}/{show}/jump", dependencies=[performer])
async def jump(shows: Shows, market: str, show: str, body: JumpBody) -> dict[str, Any]:
    runner = _runner(shows, market, show)
    return await _run(shows, runner, runner.jump(body.number, body.go))


@router.post("/{market}/{show}/pause", dependencies=[performer])
async def pause(shows: Shows, market: str, show: str) -> dict[str, Any]:
    runner = _runner(shows, market, show)
    return await _run(shows, runner, runner.pause())


@router.post("/{market}/{show}/resume", dependencies=[performer])
async def resume(shows: Shows, market: str, show: str) -> dict[str, Any]:
    runner = _runner(shows, market, show)
    return await _run(shows, runner, runner.resume())


@router.post("/{market}/{show}/stop", dependencies=[performer])
async def stop(shows: Shows, market: str, show: str) -> dict[str, Any]:
    runner = _runner(shows, market, show)
    return await _run(shows, runner, runner.stop())


@router.post("/{market}/{show}/panic", dependencies=[performer])
async def panic(shows: Shows, market: str, show: str) -> dict[str, Any]:
    runner = _runner(shows, market, show)
    return await _run(shows, runner, runner.stop(panic=True))
