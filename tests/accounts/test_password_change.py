"""A user's own password (#21): an invited user (temporary password) is sent to choose
their own before any page; every signed-in user changes theirs on /account/password
(CSRF, the current password, messages next to the fields, throttled like the sign-in);
their other sessions end, this one stays."""

from __future__ import annotations

import re

from holobazaar.accounts import service

from support.accounts import PASSWORD, Accounts, csrf_from
from support.live import LiveServer

NEW = "a brand new passphrase"


def _change(client, form: dict[str, str]):
    page = client.get("/account/password")
    assert page.status_code == 200
    return client.post("/account/password", data={"csrf": csrf_from(page.text), **form})


def test_an_invited_user_chooses_their_own_password_first(server: LiveServer,
                                                          accounts: Accounts) -> None:
    accounts.user("root", ["admin"], [])
    with server.client() as admin:
        accounts.login(admin, "root")
        page = admin.get("/studio/alpha/staff")
        made = admin.post("/studio/alpha/staff/users", data={
            "csrf": csrf_from(page.text), "name": "ivy", "invite": "1", "role": "curator",
            "market": "alpha"})
        assert made.status_code == 201
        temporary = re.search(r'id="secret-value"[^>]*value="([^"]+)"', made.text).group(1)
    with server.client() as ivy:
        signed = accounts.login(ivy, "ivy", temporary, next_url="/studio/alpha/inventory")
        assert signed.status_code == 303
        # Every page sends her to choose a password first, then back where she was going.
        page = ivy.get("/studio/alpha/inventory")
        assert page.status_code == 303
        assert page.headers["location"] == "/account/password?next=%2Fstudio%2Falpha%2Finventory"
        assert ivy.get("/home").headers["location"].startswith("/account/password")
        # The API refuses her session too until she has (the studio's calls, curl).
        api = ivy.get("/api/v1/reconcile/alpha/summary")
        assert api.status_code == 403 and "/account/password" in api.json()["detail"]
        form = ivy.get(page.headers["location"])
        assert "temporary password" in form.text
        done = ivy.post("/account/password", data={
            "csrf": csrf_from(form.text), "next": "/studio/alpha/inventory",
            "current": temporary, "new": NEW, "repeat": NEW})
        assert done.status_code == 303 and done.headers["location"] == "/studio/alpha/inventory"
        assert ivy.get("/studio/alpha/inventory").status_code == 200
        assert ivy.get("/api/v1/reconcile/alpha/summary").status_code == 200
    with server.client() as again:
        assert accounts.login(again, "ivy", temporary).status_code == 401
        assert accounts.login(again, "ivy", NEW).status_code == 303


def test_a_signed_in_user_changes_their_password(server: LiveServer,
                                                 accounts: Accounts) -> None:
    accounts.user("carol", ["curator"], ["alpha"])
    with server.client() as other, server.client() as carol:
        accounts.login(other, "carol")
        accounts.login(carol, "carol")
        assert "/account/password" in carol.get("/home").text  # linked for everyone
        # Bad input: the message next to its field, nothing changed.
        wrong = _change(carol, {"current": "not it at all", "new": NEW, "repeat": NEW})
        assert wrong.status_code == 422 and 'id="pw-current-err"' in wrong.text
        short = _change(carol, {"current": PASSWORD, "new": "short", "repeat": "short"})
        assert short.status_code == 422 and 'id="pw-new-err"' in short.text
        differ = _change(carol, {"current": PASSWORD, "new": NEW, "repeat": NEW + "!"})
        assert differ.status_code == 422 and 'id="pw-repeat-err"' in differ.text
        forged = carol.post("/account/password", data={
            "csrf": "forged", "current": PASSWORD, "new": NEW, "repeat": NEW})
        assert forged.status_code == 403
        done = _change(carol, {"current": PASSWORD, "new": NEW, "repeat": NEW})
        assert done.status_code == 303 and done.headers["location"] == "/home"
        assert carol.get("/home").status_code == 200  # this session stays
        assert other.get("/home").status_code == 303  # the other one ended
    actions = [e.action for e in service_audit(server)]
    assert "user.change_password" in actions and "auth.password_change_failed" in actions


def test_guessing_the_current_password_is_throttled(make_server) -> None:
    # A long back-off: argon2 on a loaded machine must not outlast it between the guesses.
    live = make_server(login_pair_failures=2, login_account_failures=2, login_backoff=60.0)
    Accounts(live).user("carol", ["curator"], ["alpha"])
    with live.client() as carol:
        Accounts(live).login(carol, "carol")
        answers = [_change(carol, {"current": f"guess number {i}", "new": NEW,
                                   "repeat": NEW}).status_code for i in range(4)]
        assert answers[:2] == [422, 422] and 429 in answers[2:]
        assert "Too many attempts" in _change(carol, {"current": PASSWORD, "new": NEW,
                                                      "repeat": NEW}).text
    assert service.verify_password(_hash(live, "carol"), PASSWORD)


def service_audit(live: LiveServer):
    from sqlmodel import select

    from holobazaar.audit.models import AuditEntry
    from holobazaar.db import session_scope

    with session_scope(live.app.state.services.engine) as session:  # type: ignore[attr-defined]
        return list(session.exec(select(AuditEntry)))


def _hash(live: LiveServer, name: str) -> str:
    from holobazaar.db import session_scope

    with session_scope(live.app.state.services.engine) as session:  # type: ignore[attr-defined]
        return service.get_user(session, name).password_hash
