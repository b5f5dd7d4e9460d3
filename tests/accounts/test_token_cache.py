"""The cheap request path (issue #26): a verified token is not read again for a few
seconds, a revoke given the app's token cache is seen at once (and the other nodes told),
and a manual change made with a token writes its token-write record and its change in one
transaction, the record kept whatever the change's outcome (404, 409, 412, 422)."""

from __future__ import annotations

from sqlalchemy import event
from sqlmodel import Session

from holobazaar import db
from holobazaar.accounts import service
from holobazaar.audit import service as audit

ITEM = "/api/v1/markets/alpha/items/{sku}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_verified_token_is_cached_and_a_revoke_through_another_engine_ends_it(accounts):
    token = accounts.token(["curator"], ["alpha"], name="cached")
    engine = accounts.engine
    cache = service.TokenCache()  # the running app's (its assembly builds one)
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute",
                 lambda *args: statements.append(args[2]))
    assert service.principal_for_token(engine, token, cache) is not None
    read = len(statements)
    assert read >= 1
    for _ in range(5):
        assert service.principal_for_token(engine, token, cache) is not None
    assert len(statements) == read  # served from the cache
    assert service.principal_for_token(engine, token + "x", cache) is None  # never cached
    told: list[int] = []
    cache = service.TokenCache(on_revoke=told.append)  # as with a cluster: nodes are told
    assert service.principal_for_token(engine, token, cache) is not None
    other = db.make_engine(str(engine.url))  # another engine on the same database
    try:
        row = service.revoke_token(other, "cached", cache=cache)
    finally:
        other.dispose()
    assert told == [row.id]
    assert service.principal_for_token(engine, token, cache) is None


def _actions(engine, since: int) -> list[str]:
    with Session(engine) as s:
        entries = sorted(audit.recent(s, 200), key=lambda e: e.id or 0)
    return [e.action for e in entries if (e.id or 0) > since]


def _last_id(engine) -> int:
    with Session(engine) as s:
        found = audit.recent(s, 1)
    return found[0].id or 0 if found else 0


def test_a_token_change_and_its_record_commit_together_and_refusals_keep_the_record(
        server, accounts):
    token = accounts.token(["curator"], ["alpha"], name="writer")
    engine = accounts.engine
    with server.client() as c:
        start = _last_id(engine)
        r = c.patch(ITEM.format(sku="APL-1"), json={"price": "3.30"}, headers=bearer(token))
        assert r.status_code == 200, r.text
        assert _actions(engine, start) == ["token.write", "inventory.manual.applied"]
        assert r.headers["etag"] == c.get(ITEM.format(sku="APL-1"),
                                          headers=bearer(token)).headers["etag"]
        for sku, body, headers, status in [
                ("NOPE-1", {"price": "1.00"}, {}, 404),
                ("APL-1", {"price": "900.00"}, {}, 409),
                ("APL-1", {"price": "3.40"}, {"If-Match": '"0000"'}, 412),
                ("APL-1", {"price": "not money"}, {}, 422)]:
            start = _last_id(engine)
            r = c.patch(ITEM.format(sku=sku), json=body, headers={**bearer(token), **headers})
            assert r.status_code == status, (sku, r.text)
            assert _actions(engine, start) == ["token.write"], (status, r.text)
