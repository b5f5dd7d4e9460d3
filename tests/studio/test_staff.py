"""The studio's staff page (#21): users (create, invite, grant and revoke roles per market,
a grower with a farm, disable, reset password) and tokens (create with role, market, name
and expiry, the secret shown once, revoke, last used), each through the accounts service
with the admin as the audit actor; bad input answered next to the field; admins only."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

import httpx
import pytest
from sqlmodel import select

from holobazaar.accounts import service
from holobazaar.audit.models import AuditEntry
from holobazaar.db import session_scope
from studio.inventory_content import start

from support.accounts import PASSWORD, Accounts, csrf_from
from support.live import LiveServer


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = start(tmp_path_factory.mktemp("staff"))
    accounts = Accounts(server)
    accounts.user("root", ["admin"], [])
    accounts.user("carol", ["curator"], ["alpha"])
    yield server
    server.stop()


@pytest.fixture(scope="module")
def accounts(live: LiveServer) -> Accounts:
    return Accounts(live)


@pytest.fixture(scope="module")
def admin(live: LiveServer, accounts: Accounts) -> Iterator[tuple[httpx.Client, str]]:
    client = live.client()
    accounts.login(client, "root")
    page = client.get("/studio/alpha/staff")
    assert page.status_code == 200, page.text
    yield client, csrf_from(page.text)
    client.close()


def post(admin: tuple[httpx.Client, str], path: str, **data: str) -> httpx.Response:
    client, csrf = admin
    return client.post(f"/studio/alpha/staff{path}", data={"csrf": csrf, **data})


def audit_actions(live: LiveServer, action: str) -> list[AuditEntry]:
    with session_scope(live.app.state.services.engine) as session:  # type: ignore[attr-defined]
        rows = list(session.exec(select(AuditEntry).where(AuditEntry.action == action)))
        for row in rows:
            session.expunge(row)
        return rows


def field_error(page: str, field_id: str) -> str:
    match = re.search(rf'<p class="field-error" id="{re.escape(field_id)}-err">([^<]*)</p>',
                      page)
    assert match, f"no message next to {field_id}"
    return html.unescape(match.group(1))


def grants_of(live: LiveServer, name: str) -> list[tuple[str, str, str | None]]:
    for user, grants in service.list_user_grants(live.app.state.services.engine):  # type: ignore
        if user.name == name:
            return grants
    raise AssertionError(name)


def test_only_admins_open_the_staff_page(live, accounts):
    with live.client() as anonymous:
        r = anonymous.get("/studio/alpha/staff")
        assert r.status_code == 303 and r.headers["location"].startswith("/login")
    with live.client() as client:
        accounts.login(client, "carol")
        assert client.get("/studio/alpha/staff").status_code == 403
        page = client.get("/studio/alpha/inventory").text
        assert 'href="/studio/alpha/staff"' not in page
        csrf = csrf_from(page)
        r = client.post("/studio/alpha/staff/users", data={
            "csrf": csrf, "name": "mallory", "password": PASSWORD, "role": "admin"})
        assert r.status_code == 403
    assert "mallory" not in [u.name for u, _ in service.list_users(live.app.state.services.engine)]


def test_create_a_user_with_a_role_in_this_market(live, admin):
    r = post(admin, "/users", name="Erin", password=PASSWORD, role="curator", market="alpha")
    assert r.status_code == 303, r.text
    assert grants_of(live, "erin") == [("curator", "alpha", None)]
    entry = audit_actions(live, "user.create")[-1]
    assert entry.actor == "user:root" and "erin" in entry.detail
    page = admin[0].get(r.headers["location"]).text
    assert "Created erin: curator in Market alpha." in page
    assert 'id="user-erin"' in page


def test_bad_user_forms_answer_next_to_the_field_and_create_nothing(live, admin):
    r = post(admin, "/users", name="bad name!", password="short", role="curator",
             market="alpha")
    assert r.status_code == 400
    assert "user names are" in field_error(r.text, "new-name")
    assert "passwords are 10" in field_error(r.text, "new-password")
    assert 'value="bad name!"' in r.text  # the form keeps what was typed
    r = post(admin, "/users", name="gina", password=PASSWORD, role="chief", market="alpha")
    assert r.status_code == 400 and field_error(r.text, "new-role")
    r = post(admin, "/users", name="gina", password=PASSWORD, role="curator", market="beta")
    assert r.status_code == 400 and field_error(r.text, "new-market")
    r = post(admin, "/users", name="gina", password=PASSWORD, role="grower", market="alpha")
    assert r.status_code == 400 and "farm" in field_error(r.text, "new-farm")
    r = post(admin, "/users", name="gina", password=PASSWORD, role="grower", market="alpha",
             farm="no-such-farm")
    assert r.status_code == 400 and "no farm 'no-such-farm'" in field_error(r.text, "new-farm")
    r = post(admin, "/users", name="gina", password=PASSWORD, role="grower", market="*",
             farm="hill-farm")
    assert r.status_code == 400 and "one market" in field_error(r.text, "new-market")
    r = post(admin, "/users", name="root", password=PASSWORD, role="curator", market="alpha")
    assert r.status_code == 400 and "exists" in field_error(r.text, "new-name")
    assert "gina" not in [u.name for u, _ in service.list_users(live.app.state.services.engine)]
    r = post(admin, "/users", name="<script>x</script>", password=PASSWORD, role="curator")
    assert "<script>x</script>" not in r.text and "&lt;script&gt;" in r.text


def test_a_grower_is_created_with_a_farm_from_the_picker(live, admin):
    page = admin[0].get("/studio/alpha/staff").text
    assert '<option value="hill-farm">Hill Farm</option>' in page
    r = post(admin, "/users", name="hana", password=PASSWORD, role="grower", market="alpha",
             farm="hill-farm")
    assert r.status_code == 303, r.text
    assert grants_of(live, "hana") == [("grower", "alpha", "hill-farm")]
    page = admin[0].get("/studio/alpha/staff").text
    assert "grower · Market alpha · farm Hill Farm" in page


def test_invite_shows_a_temporary_password_once(live, admin):
    r = post(admin, "/users", name="ivan", invite="1", role="performer", market="*")
    assert r.status_code == 201
    secret = re.search(r'id="secret-value" class="secret" readonly value="([^"]+)"', r.text)
    assert secret
    with live.client() as client:
        signed = Accounts(live).login(client, "ivan", password=secret.group(1))
        assert signed.status_code == 303
    assert secret.group(1) not in admin[0].get("/studio/alpha/staff").text
    assert all(secret.group(1) not in e.detail for e in audit_actions(live, "user.create"))


def test_grant_revoke_disable_enable_and_reset_password(live, admin, accounts):
    accounts.user("jo", ["curator"], ["alpha"])
    r = post(admin, "/users/jo/grant", role="grower", market="alpha", farm="river-farm")
    assert r.status_code == 303, r.text
    assert ("grower", "alpha", "river-farm") in grants_of(live, "jo")
    assert audit_actions(live, "role.grant")[-1].actor == "user:root"
    r = post(admin, "/users/jo/grant", role="grower", market="alpha")
    assert r.status_code == 400 and field_error(r.text, "g-farm-jo")
    r = post(admin, "/users/jo/revoke", role="curator", market="alpha")
    assert r.status_code == 303
    assert grants_of(live, "jo") == [("grower", "alpha", "river-farm")]
    r = post(admin, "/users/jo/revoke", role="curator", market="beta")
    assert r.status_code == 400  # another market's grants are not this page's to change

    with live.client() as jo:
        accounts.login(jo, "jo")
        assert jo.get("/studio/alpha/grower").status_code == 200
        r = post(admin, "/users/jo/disable")
        assert r.status_code == 303
        assert audit_actions(live, "user.disable")[-1].actor == "user:root"
        assert jo.get("/studio/alpha/grower").status_code == 303  # session ended
        assert accounts.login(jo, "jo").status_code != 303
    assert post(admin, "/users/jo/enable").status_code == 303

    r = post(admin, "/users/jo/password", password="short")
    assert r.status_code == 400 and "10" in field_error(r.text, "pw-jo")
    r = post(admin, "/users/jo/password", password="a brand new passphrase")
    assert r.status_code == 303
    assert audit_actions(live, "user.reset_password")[-1].actor == "user:root"
    with live.client() as jo:
        assert accounts.login(jo, "jo", password="a brand new passphrase").status_code == 303

    assert post(admin, "/users/nobody/disable").status_code == 404
    r = post(admin, "/users/root/disable")
    assert r.status_code == 400 and "your own account" in r.text
    r = post(admin, "/users/root/revoke", role="admin", market="*")
    assert r.status_code == 400
    assert ("admin", "*", None) in grants_of(live, "root")


def test_forms_need_the_sessions_csrf_token(live, admin):
    client, _ = admin
    r = client.post("/studio/alpha/staff/users", data={
        "csrf": "forged", "name": "kim", "password": PASSWORD, "role": "admin"})
    assert r.status_code == 403
    assert "kim" not in [u.name for u, _ in service.list_users(live.app.state.services.engine)]


def test_a_token_is_shown_once_works_and_stops_when_revoked(live, admin):
    r = post(admin, "/tokens", name="qlab booth", role="performer", market="alpha",
             expires="12h")
    assert r.status_code == 201, r.text
    token = re.search(r'value="(hbt_[^"]+)"', r.text).group(1)
    row = next(t for t in service.list_tokens(live.app.state.services.engine)
               if t.name == "qlab booth")
    assert row.roles == "performer" and row.markets == "alpha" and row.expires_at
    assert audit_actions(live, "token.create")[-1].actor == "user:root"
    page = admin[0].get("/studio/alpha/staff").text
    assert token not in page and "qlab booth" in page
    with live.client() as script:
        auth = {"Authorization": f"Bearer {token}"}
        assert script.get("/api/v1/shows/alpha", headers=auth).status_code == 200
        page = admin[0].get("/studio/alpha/staff").text
        last_used = re.search(rf'id="token-{row.id}".*?Last used</span>(.*?)</td>', page, re.S)
        assert last_used and "never" not in last_used.group(1)
        r = post(admin, f"/tokens/{row.id}/revoke")
        assert r.status_code == 303
        assert audit_actions(live, "token.revoke")[-1].actor == "user:root"
        assert script.get("/api/v1/shows/alpha", headers=auth).status_code == 401
    assert post(admin, "/tokens/99999/revoke").status_code == 404


def test_bad_token_forms_answer_next_to_the_field(live, admin):
    r = post(admin, "/tokens", name="", role="performer", market="alpha", expires="12h")
    assert r.status_code == 400 and field_error(r.text, "tok-name")
    r = post(admin, "/tokens", name="x", role="grower", market="alpha", expires="12h")
    assert r.status_code == 400 and field_error(r.text, "tok-role")
    r = post(admin, "/tokens", name="x", role="curator", market="alpha", expires="soon")
    assert r.status_code == 400 and "bad duration" in field_error(r.text, "tok-expires")
    r = post(admin, "/tokens", name="x", role="curator", market="gamma", expires="1d")
    assert r.status_code == 400 and field_error(r.text, "tok-market")
    r = post(admin, "/tokens", name="forever", role="curator", market="*", expires="never")
    assert r.status_code == 201
    row = next(t for t in service.list_tokens(live.app.state.services.engine)
               if t.name == "forever")
    assert row.expires_at is None and row.markets == "*"
    r = post(admin, "/tokens", name="forever", role="curator", market="*", expires="never")
    assert r.status_code == 400 and "exists" in field_error(r.text, "tok-name")
