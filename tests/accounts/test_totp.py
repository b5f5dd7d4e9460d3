"""TOTP second factor for admins: enrolment on /account/totp with codes pyotp generates
(as an authenticator app would), the code step at sign-in, reuse and wrong codes refused,
recovery by another admin (page) and the CLI."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pyotp
from sqlmodel import Session

from holobazaar.accounts import service
from holobazaar.audit import service as audit

from .conftest import PASSWORD, csrf_from


def code_for(secret: str, offset: int = 0) -> str:
    return pyotp.TOTP(secret).at(datetime.now(UTC) + timedelta(seconds=30 * offset))


def enrol(live, c) -> str:
    """Enrol the signed-in admin of client `c`; returns the secret (read off the page)."""
    page = c.get("/account/totp")
    assert page.status_code == 200 and "<svg" in page.text
    secret = re.search(r'id="secret">([A-Z2-7 ]+)<', page.text).group(1).replace(" ", "")
    # The QR code carries the same secret (otpauth URI); the page is never cached.
    assert page.headers["cache-control"] == "no-store"
    csrf = csrf_from(page.text)
    wrong = c.post("/account/totp", data={"csrf": csrf, "action": "confirm", "code": "000000"})
    assert wrong.status_code == 422 and "did not match" in wrong.text
    done = c.post("/account/totp", data={"csrf": csrf, "action": "confirm",
                                         "code": code_for(secret)})
    assert done.status_code == 200 and "sign-in asks" in done.text, done.text
    return secret


def password_step(c, name: str, password: str = PASSWORD):
    page = c.get("/login")
    return c.post("/login", data={"username": name, "password": password,
                                  "csrf": csrf_from(page.text), "next": "/admin/sign-ins"})


def code_step(c, code: str):
    page = c.get("/login/code?next=/admin/sign-ins")
    assert page.status_code == 200, page.text
    return c.post("/login/code", data={"code": code, "csrf": csrf_from(page.text),
                                       "next": "/admin/sign-ins"})


def test_enrol_then_sign_in_asks_for_the_code(server, accounts, monkeypatch):
    accounts.user("root", ["admin"], [])
    with server.client() as c:
        accounts.login(c, "root")
        secret = enrol(server, c)
    with server.client() as c:
        r = password_step(c, "root")
        assert r.status_code == 303 and r.headers["location"].startswith("/login/code")
        assert "hb_session" not in c.cookies  # the password alone opens nothing
        assert c.get("/api/v1/auth/me").status_code == 401
        assert code_step(c, "123 456" if code_for(secret) != "123456" else "654321"
                         ).status_code == 401
        # The next step's code (clock drift of one step is allowed).
        ok = code_step(c, code_for(secret, +1))
        assert ok.status_code == 303 and ok.headers["location"] == "/admin/sign-ins"
        assert c.get("/api/v1/auth/me").json()["name"] == "root"
    # A code works once: replaying the same one (or an older one) is refused.
    with server.client() as c:
        assert password_step(c, "root").status_code == 303
        assert code_step(c, code_for(secret, +1)).status_code == 401
        assert code_step(c, code_for(secret)).status_code == 401
    with Session(accounts.engine) as s:
        entries = audit.recent(s, limit=100)
    text = " ".join(e.detail for e in entries)
    assert secret not in text  # never in the audit log
    assert {"user.totp_enable", "auth.password_ok", "auth.code_failed", "auth.login"} <= {
        e.action for e in entries}


def test_the_code_step_is_bounded_and_needs_the_password_first(server, accounts):
    accounts.user("root", ["admin"], [])
    with server.client() as c:
        accounts.login(c, "root")
        enrol(server, c)
    with server.client() as c:
        # No challenge: back to the password.
        assert c.get("/login/code").status_code == 303
        assert password_step(c, "root").status_code == 303
        answers = [code_step(c, "000000") for _ in range(5)]
        assert [a.status_code for a in answers] == [401] * 5
        # Five wrong codes end the challenge: back to the password.
        assert "Wrong code" in answers[3].text
        assert "enter your password again" in answers[4].text
        assert c.get("/login/code").status_code == 303
    with Session(accounts.engine) as s:
        failed = audit.recent(s, limit=100, action="auth.code_failed")
    assert len(failed) == 5


def test_another_admin_resets_a_lost_second_factor(server, accounts):
    accounts.user("root", ["admin"], [])
    accounts.user("ops", ["admin"], [])
    with server.client() as c:
        accounts.login(c, "root")
        enrol(server, c)
    with server.client() as ops:
        accounts.login(ops, "ops")
        page = ops.get("/admin/sign-ins")
        assert "on since" in page.text
        reset = ops.post("/admin/sign-ins/reset-totp",
                         data={"user": "root", "csrf": csrf_from(page.text)})
        assert reset.status_code == 200 and "Second factor of root removed" in reset.text
    with server.client() as c:  # the password alone again
        assert password_step(c, "root").headers["location"] == "/admin/sign-ins"


def test_cli_reset_totp(server, accounts):
    from typer.testing import CliRunner

    from holobazaar.cli import app as cli

    accounts.user("root", ["admin"], [])
    with server.client() as c:
        accounts.login(c, "root")
        enrol(server, c)
    where = ["--data-dir", str(server.settings.data_dir)]
    done = CliRunner().invoke(cli, ["user", "reset-totp", "root", *where])
    assert done.exit_code == 0 and "second factor of 'root' removed" in done.output
    assert service.totp_enabled(accounts.engine, 1) is None
    again = CliRunner().invoke(cli, ["user", "reset-totp", "nobody", *where])
    assert again.exit_code == 1 and "no user 'nobody'" in again.output


def test_codes_from_the_wrong_window_are_refused():
    secret = pyotp.random_base32()
    now = datetime.now(UTC)
    from holobazaar.accounts import totp

    assert totp.matching_step(secret, code_for(secret), now) is not None
    assert totp.matching_step(secret, code_for(secret, -3), now) is None
    assert totp.matching_step(secret, "12345", now) is None
    assert totp.matching_step(secret, "\uff11" * 6, now) is None  # full-width digits
    step = totp.matching_step(secret, code_for(secret), now)
    assert totp.matching_step(secret, code_for(secret), now, last_step=step) is None
