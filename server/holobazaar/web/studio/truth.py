"""Studio section: holds and mismatches, /studio/<market>/truth.

The held changes with old -> new and who asked (a curator under four eyes) or which feed
sent them, approved or rejected with a reason through POST
/api/v1/reconcile/{m}/held/{id}/{approve|reject}; open and recent mismatches by kind with
their time to correct; the glitch drill (admins, POST .../drill); audit chain verification
(GET /api/v1/markets/{m}/audit/verify) and export (.../audit/export).

Live: the page joins the market's staff channel `market/<m>/truth` on /ws (with a
curator's pass minted here; inventory/truth_feed.py publishes a summary there whenever
held changes, mismatches or the moderation queue change) and the displays' public
channels, and re-reads its live part (`?part=live`, the same template) when a message
arrives. A slow poll (30 s) is only the fallback when the socket is down.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request
from sqlmodel import col, select
from starlette.responses import HTMLResponse, Response

from holobazaar import db
from holobazaar.audit.models import AuditEntry
from holobazaar.channels import display_channel, truth_channel
from holobazaar.db import as_utc, session_scope
from holobazaar.inventory.mismatches import KINDS
from holobazaar.inventory.service import amount_text
from holobazaar.inventory.tables import FOUR_EYES, FeedBatch, HeldChange, Mismatch
from holobazaar.scenes.dependencies import market_or_404
from holobazaar.web.services import services
from holobazaar.web.studio.shell import open_page

router = APIRouter(include_in_schema=False)

RECENT = 30
POLL_SECONDS = 30  # the fallback: the stream says when to re-read
REASONS = {"price_change": "large price change", "circuit_breaker": "circuit breaker: most "
           "items changed at once", FOUR_EYES: "four eyes: a curator's large change"}
SOURCES = {"push": "feed (webhook)", "pull": "feed (pull)", "file": "file import (CLI)",
           "import": "file import (studio)"}


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def who(actor: str | None) -> str:
    return (actor or "").removeprefix("user:").removeprefix("token:") or "—"


def _facts_line(facts: dict[str, Any] | None) -> str:
    if not facts:
        return "removed"
    stock = facts.get("stock")
    status = str(facts.get("status", "")).replace("_", " ")
    try:
        price = amount_text(Decimal(str(facts.get("price"))))
    except ArithmeticError:
        price = str(facts.get("price"))
    return (f"{price} {facts.get('currency', '')} / {facts.get('unit', '')}, "
            f"stock {'—' if stock is None else stock} ({status})")


def _shown(raw: str, sku: str | None) -> str:
    """A mismatch's expected/shown value in a few words."""
    try:
        value = json.loads(raw)
    except ValueError:
        return raw[:80]
    if isinstance(value, dict):
        if "price" in value or "status" in value:
            price = value.get("notice") or value.get("price")
            parts = [f"{price} {value.get('currency', '')}".strip()] if price else []
            if value.get("status"):
                parts.append(str(value["status"]).replace("_", " "))
            if value.get("verified") is False:
                parts.append("unverified")
            name = value.get("name")
            return (f"{name}: " if name and value.get("sku") != sku else "") + ", ".join(parts)
        return ", ".join(f"{k}: {v}" for k, v in list(value.items())[:3])[:80]
    return "nothing" if value is None else str(value)[:80]


def _read(engine: Any, market: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    with session_scope(engine) as session:
        held_rows = list(session.exec(select(HeldChange).where(
            HeldChange.market == market, col(HeldChange.decision).is_(None))
            .order_by(col(HeldChange.id))))
        batches = {b.id: b.source for b in session.exec(select(FeedBatch).where(
            col(FeedBatch.id).in_(sorted({h.batch_id for h in held_rows if h.batch_id}) or [0])))}
        held = []
        for h in held_rows:
            new = json.loads(h.new)
            old = json.loads(h.old) if h.old else None
            facts = new.get("facts")
            if h.reason == FOUR_EYES:
                source = f"{who(h.requested_by)} (curator)"
            else:
                source = SOURCES.get(batches.get(h.batch_id, ""), "feed")
                source += f", batch #{h.batch_id}" if h.batch_id else ""
            held.append({
                "id": h.id, "sku": h.sku, "name": (facts or old or {}).get("name", h.sku),
                "reason": REASONS.get(h.reason, h.reason), "four_eyes": h.reason == FOUR_EYES,
                "old": _facts_line(old), "new": _facts_line(facts) if new["op"] != "remove"
                else "removed", "source": source, "requested_by": h.requested_by,
                "batch": h.batch_id if h.reason == "circuit_breaker" else None,
                "since": as_utc(h.created_at),
                "waiting": duration((now - as_utc(h.created_at)).total_seconds())})
        decisions = []
        for entry in session.exec(select(AuditEntry).where(
                AuditEntry.market == market,
                col(AuditEntry.action).in_(["inventory.held.approved",
                                            "inventory.held.rejected"]))
                .order_by(col(AuditEntry.id).desc()).limit(10)):
            detail = json.loads(entry.detail)
            decisions.append({"id": detail.get("held"), "sku": detail.get("sku"),
                              "decision": entry.action.rsplit(".", 1)[1],
                              "by": who(entry.actor), "at": as_utc(entry.time),
                              "reason": detail.get("reason")})
        open_rows = list(session.exec(select(Mismatch).where(
            Mismatch.market == market, col(Mismatch.resolved_at).is_(None))
            .order_by(col(Mismatch.id).desc()).limit(200)))
        recent_rows = list(session.exec(select(Mismatch).where(
            Mismatch.market == market, col(Mismatch.resolved_at).is_not(None))
            .order_by(col(Mismatch.id).desc()).limit(RECENT)))

    def mismatch(m: Mismatch) -> dict[str, Any]:
        detected, resolved = as_utc(m.detected_at), as_utc(m.resolved_at)
        took = ((resolved or now) - detected).total_seconds() if detected else None
        return {"id": m.id, "display": m.display, "sku": m.sku or "—",
                "kind": m.kind.replace("_", " "), "expected": _shown(m.expected, m.sku),
                "shown": _shown(m.shown, m.sku), "detected": detected,
                "took": duration(took), "resolution": m.resolution or "open"}

    return {"held": held, "decisions": decisions,
            "open": [mismatch(m) for m in open_rows],
            "recent": [mismatch(m) for m in recent_rows]}


async def _context(request: Request, market: str) -> dict[str, Any]:
    engine = services(request).engine
    data = await db.call(engine, _read, engine, market)
    summary = await services(request).reconciler.summary(market)
    times = summary["time_to_correct_seconds"]
    data.update({
        "summary": summary, "kinds": KINDS,
        "ttc": {k: duration(v) for k, v in times.items()}
        if times and times.get("p50") is not None else {},
        "poll": POLL_SECONDS, "now": datetime.now(UTC)})
    return data


def staff_pass(request: Request, market: str) -> tuple[str, str]:
    """The staff channel and a pass to join it (the page is for the market's curators)."""
    channel = truth_channel(market)
    return channel, services(request).preview_links.mint(channel)


@router.get("/studio/{market}/truth", response_class=HTMLResponse)
async def truth(request: Request, market: str, part: str | None = None) -> Response:
    page = await open_page(request, market, "truth")
    if isinstance(page, Response):
        return page
    context = await _context(request, market)
    context["me"] = page.principal.actor
    if part == "live":
        return page.render("studio/truth_live.html", context)
    content = market_or_404(services(request).scenes, market)
    context["channels"] = [display_channel(market, d) for d in sorted(content.displays)]
    context["is_admin"] = page.allows("admin")
    context["truth_channel"], context["truth_pass"] = staff_pass(request, market)
    return page.render("studio/truth.html", context)

