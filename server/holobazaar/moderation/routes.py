"""One moderation queue per market (docs/pulse.md, "Moderation"): community story and
recipe submissions (stories domain) and visitors' notes sent with reactions (pulse), in
one listing with the same two curator actions. Each item stays in its own table (a note
is not a draft document and has no lifecycle); moderation/service.py reads both, this
module lists them and routes each decision to its domain, which audits it."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path
from pydantic import BaseModel, ConfigDict, Field

from holobazaar import db
from holobazaar.accounts.dependencies import require_role
from holobazaar.accounts.models import Principal
from holobazaar.moderation.service import queue
from holobazaar.pulse import database as pulse_database
from holobazaar.scenes.dependencies import Scenes, market_or_404
from holobazaar.stories import service as stories

router = APIRouter(tags=["moderation"])
curator = require_role("curator")


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str | None = Field(None, max_length=200)


@router.get("/api/v1/markets/{market}/moderation",
            summary="Everything awaiting a curator: submissions and visitors' notes")
async def moderation_queue(market: str, scenes: Scenes,
                           _: Annotated[Principal, Depends(curator)]) -> list[dict[str, Any]]:
    market_or_404(scenes, market)
    return await db.call(scenes.engine, queue, scenes.engine, market)


@router.post("/api/v1/markets/{market}/moderation/{kind}/{ident}/{decision}",
             summary="Approve or reject a submission or a note")
async def decide(market: str, scenes: Scenes, kind: Literal["story", "recipe", "note"],
                 ident: Annotated[str, Path(max_length=80)],
                 decision: Literal["approve", "reject"],
                 principal: Annotated[Principal, Depends(curator)],
                 body: Decision | None = None) -> dict[str, Any]:
    market_or_404(scenes, market)
    engine, reason = scenes.engine, body.reason if body else None
    if kind == "note":
        if not (ident.isascii() and ident.isdigit()) or len(ident) > 12:  # not "²"
            raise HTTPException(422, "id: a note's id is a number")
        status = "approved" if decision == "approve" else "rejected"
        try:
            row = await db.call(engine, pulse_database.decide_feedback, engine, market,
                                int(ident), status, principal.actor, reason)
        except pulse_database.AlreadyDecided as exc:
            raise HTTPException(409, str(exc)) from None
        if row is None:
            raise HTTPException(404, f"no note {ident} in market {market!r}")
        return {"kind": kind, "id": ident, "moderation": row.status, "reason": row.reason}
    try:
        saved = await db.call(engine, stories.moderate, engine, kind, ident, market,
                              decision, principal.actor, reason)
    except stories.NotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except stories.Conflict as exc:
        raise HTTPException(409, str(exc)) from None
    return {"kind": kind, "id": ident, "moderation": saved.moderation,
            "reason": saved.moderation_reason}
