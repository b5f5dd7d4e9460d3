"""Community submissions: anonymous, rate-limited per client address, landing as drafts
in the moderation queue; links are held with a reason; curators approve or reject."""

from __future__ import annotations

from holobazaar.cluster.limits import LocalRateLimiter

QUEUE = "/api/v1/markets/greenhaven/submissions"


def submission(**extra):
    return {"kind": "story", "market": "greenhaven", "title": "Our balcony beans",
            "author": "Noor", "body": "We grew *borlotti* from the seed library.", **extra}


def test_submit_moderate_and_rate_limit(live_server):
    headers = live_server.write_headers
    with live_server.client() as http:
        ok = http.post("/api/v1/submissions", json=submission())
        assert ok.status_code == 202, ok.text
        slug = ok.json()["slug"]
        assert ok.json()["moderation"] == "pending" and ok.json()["reason"] is None
        held = http.post("/api/v1/submissions", json=submission(
            kind="recipe", title="Best soup", body="Buy at https://spam.example",
            ingredients=["water"], instructions=["Boil."]))
        assert held.json()["moderation"] == "held"
        assert held.json()["reason"] == "contains links: held for a curator"
        # Burst of 3 per address: the fourth is refused with a reason and Retry-After.
        limited = http.post("/api/v1/submissions", json=submission(title="Third one"))
        assert limited.status_code == 202
        refused = http.post("/api/v1/submissions", json=submission(title="Fourth one"))
        assert refused.status_code == 429 and "too many submissions" in refused.json()["detail"]
        assert int(refused.headers["retry-after"]) > 0

        bad = http.post("/api/v1/submissions", json={"kind": "story", "market": "greenhaven",
                                                     "title": "x", "evil": 1})
        assert bad.status_code == 422
        assert {tuple(e["loc"]) for e in bad.json()["detail"]} == {("title",), ("evil",)}
        assert http.post("/api/v1/submissions", json=submission(market="nowhere")
                         ).status_code == 404

        assert http.get(QUEUE).status_code == 401
        queue = http.get(QUEUE, headers=headers).json()
        assert [(q["slug"], q["moderation"]) for q in queue][:2] == [
            (slug, "pending"), (held.json()["slug"], "held")]
        assert queue[0]["status"] == "draft" and queue[0]["origin"] == "submission"
        # Not public, not publishable before moderation.
        assert http.get(f"/api/v1/stories/{slug}").status_code == 404
        early = http.post(f"/api/v1/markets/greenhaven/stories/{slug}/status",
                          json={"status": "review"}, headers=headers)
        assert early.status_code == 409 and "moderation" in early.json()["detail"]

        # The curator edits, approves (-> review) and publishes it.
        doc = http.get(f"/api/v1/markets/greenhaven/stories/{slug}", headers=headers).json()
        edited = {**doc["document"], "title": "Balcony borlotti"}
        assert http.put(f"/api/v1/markets/greenhaven/stories/{slug}", json=edited,
                        headers=headers).status_code == 200
        approved = http.post(f"{QUEUE}/story/{slug}/approve", headers=headers)
        assert approved.status_code == 200 and approved.json()["status"] == "review"
        assert approved.json()["moderation"] == "approved"
        assert http.post(f"/api/v1/markets/greenhaven/stories/{slug}/publish",
                         headers=headers).status_code == 200
        assert http.get(f"/api/v1/stories/{slug}").json()["document"]["title"] == \
            "Balcony borlotti"
        rejected = http.post(f"{QUEUE}/recipe/{held.json()['slug']}/reject",
                             json={"reason": "advertising"}, headers=headers)
        assert rejected.json()["status"] == "archived"
        assert rejected.json()["moderation_reason"] == "advertising"
        again = http.post(f"{QUEUE}/recipe/{held.json()['slug']}/approve", headers=headers)
        assert again.status_code == 409
        assert [q["slug"] for q in http.get(QUEUE, headers=headers).json()] == [
            limited.json()["slug"]]
        audit = http.get(f"/api/v1/markets/greenhaven/stories/{slug}/revisions",
                         headers=headers).json()
        assert audit[0]["actor"] == "visitor"


def test_rate_limiter_refills():
    limiter = LocalRateLimiter(per_hour=3600, burst=2)  # one per second
    assert limiter.take_at("a", 0) == 0 and limiter.take_at("a", 0) == 0
    assert limiter.take_at("a", 0) > 0
    assert limiter.take_at("b", 0) == 0  # per address
    assert limiter.take_at("a", 1.01) == 0
