"""One moderation queue: community submissions and visitors' notes in one curator listing,
the same text rules and the same approve/reject actions (audited)."""

from __future__ import annotations

import asyncio

from holobazaar.audit import service as audit
from holobazaar.db import session_scope
from holobazaar.pulse.sanitize import sanitize_feedback
from holobazaar.visitor_text import hold_reason
from pulse.reactions import DISPLAY_A, MARKET, display_channel, reaction

from support.live import LiveServer
from support.streamclient import joined

QUEUE = f"/api/v1/markets/{MARKET}/moderation"


def test_shared_rules_hold_submissions_and_clean_notes() -> None:
    # A bare spam domain: a submission is held for it, a note loses it.
    assert hold_reason("Buy cheap seeds at seeds-cheap.xyz") == (
        "contains links: held for a curator")
    assert sanitize_feedback("Buy at seeds-cheap.xyz now") == (
        "Buy at [link removed] now", ["links removed"])
    assert sanitize_feedback("see [this](x)") == ("see [link removed]", ["links removed"])
    assert hold_reason("Kind\u200b words") == (
        "contains invisible characters: held for a curator")
    assert hold_reason("Our balcony beans, grown from seed.") is None


def test_one_queue_for_submissions_and_notes(live_server: LiveServer) -> None:
    async def note() -> None:
        client = await joined(live_server.ws_url, display_channel(DISPLAY_A))
        await client.send(reaction(DISPLAY_A, text="Lovely kale, see kale-spam.com"))
        await client.quiet(0.3)
        assert client.errors == []
        await client.close()

    asyncio.run(note())
    live_server.call(live_server.app.state.services.pulse.flush)
    headers = live_server.write_headers
    with live_server.client() as http:
        story = http.post("/api/v1/submissions", json={
            "kind": "story", "market": MARKET, "title": "Our balcony beans",
            "body": "Grown\u200b from the seed library."}).json()
        assert story["moderation"] == "held"
        assert http.get(QUEUE).status_code == 401
        queue = http.get(QUEUE, headers=headers).json()
        by_kind = {item["kind"]: item for item in queue}
        assert set(by_kind) == {"story", "note"}
        assert by_kind["story"]["id"] == story["slug"]
        assert by_kind["story"]["reason"] == "contains invisible characters: held for a curator"
        assert by_kind["note"]["text"] == "Lovely kale, see [link removed]"
        assert by_kind["note"]["moderation"] == "held" and by_kind["note"]["reason"]
        assert by_kind["note"]["display"] == DISPLAY_A

        note_url = f"{QUEUE}/note/{by_kind['note']['id']}"
        assert http.post(f"{note_url}/approve").status_code == 401
        approved = http.post(f"{note_url}/approve", headers=headers)
        assert approved.json()["moderation"] == "approved", approved.text
        assert http.post(f"{note_url}/reject", headers=headers).status_code == 409
        rejected = http.post(f"{QUEUE}/story/{story['slug']}/reject",
                             json={"reason": "not about the market"}, headers=headers)
        assert rejected.json() == {"kind": "story", "id": story["slug"],
                                   "moderation": "rejected", "reason": "not about the market"}
        assert http.post(f"{QUEUE}/story/{story['slug']}/approve",
                         headers=headers).status_code == 409
        assert http.get(QUEUE, headers=headers).json() == []
        # Bad input: not a note id, unknown note, unknown market, extra body fields.
        assert http.post(f"{QUEUE}/note/abc/approve", headers=headers).status_code == 422
        assert http.post(f"{QUEUE}/note/999999/approve", headers=headers).status_code == 404
        assert http.get("/api/v1/markets/nowhere/moderation",
                        headers=headers).status_code in (403, 404)
        assert http.post(f"{QUEUE}/story/{story['slug']}/reject", json={"evil": 1},
                         headers=headers).status_code == 422
        # The pulse feedback API shows the same decision.
        assert http.get(f"/api/v1/pulse/{MARKET}/feedback", params={"status": "approved"},
                        headers=headers).json()[0]["text"] == "Lovely kale, see [link removed]"
    with session_scope(live_server.app.state.services.engine) as session:
        actions = [e.action for e in audit.recent(session, 20)]
        assert not audit.verify(session)
    assert "note.approve" in actions and "story.reject" in actions
