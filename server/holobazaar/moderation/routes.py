"""One moderation queue per market (docs/pulse.md, "Moderation"): community story and
recipe submissions (stories domain) and visitors' notes sent with reactions (pulse), in
one listing with the same two curator actions. Each item stays in its own table (a note
is not a draft document and has no lifecycle); this module only reads both and routes
each decision to its domain, which audits it."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from holobazaar.accounts.dependencies import require_role
from holobazaar.accounts.models import Principal
from holobazaar.pulse import store as pulse_store
from holobazaar.scenes.dependencies import Scenes, market_or_404
from holobazaar.stories import service as stories

router = APIRouter(tags=["moderation"])
curator = require_role("curator")
QUEUE_LIMIT = 200


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str | None = Field(None, max_length=200)


def submission_item(saved: stories.Saved) -> dict[str, Any]:
    doc = saved.doc.model_dump(mode="json")
    return {"kind": saved.kind, "id": saved.slug, "moderation": saved.moderation,
            "reason": saved.moderation_reason, "title": doc.get("title") or doc.get("name"),
            "text": saved.doc.body, "author": doc.get("author") or "", "display": None,
            "created_at": saved.created_at.isoformat()}


def note_item(row: Any) -> dict[str, Any]:
    return {"kind": "note", "id": str(row.id), "moderation": row.status,
            "reason": row.flags or None, "title": None, "text": row.text, "author": "",
            "display": row.display, "reaction": row.kind,
            "created_at": row.created_at.isoformat()}


def queue(engine: Any, market: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for kind in ("story", "recipe"):
        for state in ("pending", "held"):
            _, rows = stories.list_documents(engine, kind, market=market, moderation=state,
                                             limit=QUEUE_LIMIT)
            items.extend(submission_item(r) for r in rows)
    items.extend(note_item(r) for r in pulse_store.feedback(engine, market, "held",
                                                            QUEUE_LIMIT))
    return sorted(items, key=lambda i: (i["created_at"], i["kind"], i["id"]))


@router.get("/api/v1/markets/{market}/moderation",
            summary="Everything awaiting a curator: submissions and visitors' notes")
async def moderation_queue(market: str, scenes: Scenes,
                           _: Annotated[Principal, Depends(curator)]) -> list[dict[str, Any]]:
    market_or_404(scenes, market)
    return await run_in_threadpool(queue, scenes.engine, market)


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
            row = await run_in_threadpool(pulse_store.decide_feedback, engine, market,
                                          int(ident), status, principal.actor, reason)
        except pulse_store.AlreadyDecided as exc:
            raise HTTPException(409, str(exc)) from None
        if row is None:
            raise HTTPException(404, f"no note {ident} in market {market!r}")
        return {"kind": kind, "id": ident, "moderation": row.status, "reason": row.reason}
    try:
        saved = await run_in_threadpool(stories.moderate, engine, kind, ident, market,
                                        decision, principal.actor, reason)
    except stories.NotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except stories.Conflict as exc:
        raise HTTPException(409, str(exc)) from None
    return {"kind": kind, "id": ident, "moderation": saved.moderation,
            "reason": saved.moderation_reason}
