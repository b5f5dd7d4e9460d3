"""Studio section: moderation, /studio/<market>/moderation.

One queue for community story/recipe submissions and visitors' notes (the same listing as
GET /api/v1/markets/{m}/moderation, holobazaar.moderation.service.queue), each with the rule
that held it; approve, reject (with an optional reason), approve and publish (a
submission), or edit before approving (the stories editor keeps the submission in the
queue until a decision). Decisions go to the same domain calls as the API, which audit them.

Live: the open page joins the staff channel `market/<m>/truth` on /ws (a curator's pass;
inventory/truth_feed.py publishes the queue's count and signature there when it changes)
and re-reads the queue's HTML (`?part=queue`, the same template) when the signature
changed. Without the socket it asks `?part=state` (the same count and signature) every
30 s as a fallback.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from holobazaar import db
from holobazaar.moderation.service import queue, queue_signature
from holobazaar.pulse import database as pulse_database
from holobazaar.stories import service as stories
from holobazaar.stories.routes import content_changed
from holobazaar.web.services import services
from holobazaar.web.studio.shell import (
    NO_STORE,
    StudioPage,
    first,
    open_page,
    posted,
)
from holobazaar.web.studio.truth import staff_pass

router = APIRouter(include_in_schema=False)
POLL_SECONDS = 30  # the fallback: the stream says when the queue changed
DEFAULT_RULE = "every visitor submission waits for a curator"
DONE = {"approve": "Approved: it is now in review, ready to publish from Stories & recipes.",
        "publish": "Approved and published: visitors see it now.",
        "reject": "Rejected: it stays archived and is never shown."}


async def _queue(page: StudioPage) -> tuple[list[dict[str, Any]], str]:
    """What is waiting, each with the rule that held it, and a signature of the queue (it
    changes when anything is added, decided or edited)."""
    engine = services(page.request).engine
    items: list[dict[str, Any]] = await db.call(engine, queue, engine, page.market)
    for item in items:
        item["rule"] = item["reason"] or (DEFAULT_RULE if item["kind"] != "note" else
                                          "held by the note rules")
    return items, queue_signature(items)


async def _render(page: StudioPage, status: int = 200, error: str = "",
                  error_id: str = "") -> Response:
    items, sig = await _queue(page)
    if error_id not in {f"{i['kind']}-{i['id']}" for i in items}:
        error_id = ""  # no longer in the queue: the message goes at the top
    done = DONE.get(page.request.query_params.get("done", ""), "")
    channel, pass_ = staff_pass(page.request, page.market)
    return page.render("studio/moderation.html", {
        "items": items, "sig": sig, "poll": POLL_SECONDS, "channel": channel, "pass": pass_,
        "done": done, "error": error, "error_id": error_id,
        "done_slug": page.request.query_params.get("id", ""),
        "done_kind": page.request.query_params.get("kind", "")}, status=status)


@router.get("/studio/{market}/moderation", response_class=HTMLResponse)
async def moderation_page(request: Request, market: str, part: str | None = None
                          ) -> Response:
    page = await open_page(request, market, "moderation")
    if not isinstance(page, StudioPage):
        return page
    if part == "state":
        items, sig = await _queue(page)
        return JSONResponse({"count": len(items), "sig": sig}, headers=NO_STORE)
    if part == "queue":
        items, _ = await _queue(page)
        return page.render("studio/moderation_queue.html", {
            "items": items, "error": "", "error_id": ""})
    return await _render(page)


@router.post("/studio/{market}/moderation", response_class=HTMLResponse)
async def decide(request: Request, market: str) -> Response:
    checked = await posted(request, market, "moderation")
    if isinstance(checked, Response):
        return checked
    page, form = checked
    kind, ident, decision = first(form, "kind"), first(form, "id"), first(form, "decision")
    reason = first(form, "reason").strip() or None
    engine, actor = services(request).engine, page.principal.actor
    key = f"{kind}-{ident}"
    if kind not in ("story", "recipe", "note") or decision not in DONE or len(ident) > 80:
        return await _render(page, 422, "Choose an item and approve or reject it.", key)
    if reason is not None and len(reason) > 200:
        return await _render(page, 422, "Reason: at most 200 characters.", key)
    if kind == "note":
        if decision == "publish" or not (ident.isascii() and ident.isdigit()):
            return await _render(page, 422, "A note is approved or rejected.", key)
        try:
            row = await db.call(
                engine, pulse_database.decide_feedback, engine, market, int(ident),
                "approved" if decision == "approve" else "rejected", actor, reason)
        except pulse_database.AlreadyDecided as exc:
            return await _render(page, 409, str(exc), key)
        if row is None:
            return await _render(page, 404, f"There is no note {ident} here.", key)
    else:
        try:
            await db.call(engine, stories.moderate, engine, kind, ident, market,
                          "reject" if decision == "reject" else "approve", actor,
                          reason)
            if decision == "publish":
                await db.call(engine, stories.transition, engine, kind, ident, market,
                              "published", actor)
                await content_changed(request, market)
        except stories.NotFound as exc:
            return await _render(page, 404, str(exc), key)
        except stories.Conflict as exc:
            return await _render(page, 409, str(exc), key)
    return RedirectResponse(f"/studio/{market}/moderation?done={decision}&kind={kind}"
                            f"&id={ident}", status_code=303, headers=NO_STORE)
