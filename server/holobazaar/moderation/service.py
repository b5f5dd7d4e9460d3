"""The moderation queue of a market, read from both domains' tables (community
submissions: stories; visitors' notes: pulse), and its signature. The API
(moderation/routes.py), the studio's moderation page and the truth channel's summary
(inventory/truth_feed.py, given `queue` and `queue_signature` by the assembly) read it
here."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from holobazaar.pulse import database as pulse_database
from holobazaar.stories import service as stories

QUEUE_LIMIT = 200


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
    items.extend(note_item(r) for r in pulse_database.feedback(engine, market, "held",
                                                            QUEUE_LIMIT))
    return sorted(items, key=lambda i: (i["created_at"], i["kind"], i["id"]))


def queue_signature(items: Iterable[dict[str, Any]]) -> str:
    """A moderation queue's signature: it changes when anything is added, decided or
    edited (the moderation page compares it with the truth channel's)."""
    marks = "\n".join(f"{i['kind']}/{i['id']}/{i.get('title')}/{i.get('text')}"
                      for i in items)
    return hashlib.sha256(marks.encode()).hexdigest()[:16]
