"""Sign-in throttling that an attacker cannot turn against staff (#28, finding 3): back-off
per (account, address) pair, known pairs pass, per-account/-address/overall ceilings only
for pairs that never signed in, and an admin unlock. Addresses come from X-Forwarded-For
through a trusted proxy (the test client on loopback), as behind nginx."""

from __future__ import annotations

import re

import pytest

from holobazaar.accounts import service

from .conftest import PASSWORD, csrf_from

PROXY = "127.0.0.1,::1"
WRONG = "wrong password!"


def attempt(c, name: str, password: str, address: str):
    page = c.get("/login", headers={"X-Forwarded-For": address})
    return c.post("/login", headers={"X-Forwarded-For": address},
                  data={"username": name, "password": password, "csrf": csrf_from(page.text)})


def sign_in(live, name: str, address: str, password: str = PASSWORD):
    """A fresh client signed in as `name` from `address` (asserts success)."""
    c = live.client()
    r = attempt(c, name, password, address)
    assert r.status_code == 303, r.text
    return c


def test_a_locked_out_attacker_does_not_stop_the_right_password_from_elsewhere(make_server):
    live = make_server(trusted_proxies=PROXY, login_backoff=60)
    service.create_user(live.app.state.services.engine, "root", PASSWORD, ["admin"], [])
    with live.client() as attacker:
        codes = [attempt(attacker, "root", WRONG, "203.0.113.66").status_code
                 for _ in range(12)]
        assert codes == [401] * 5 + [429] * 7  # the attacker's pair backs off
        # Even the right password waits at the attacker's address (it cannot be told apart).
        assert attempt(attacker, "root", PASSWORD, "203.0.113.66").status_code == 429
    sign_in(live, "root", "198.51.100.7").close()  # the admin, from elsewhere: in at once


def test_a_spray_from_one_address_does_not_lock_its_known_staff_or_other_addresses(
        make_server):
    live = make_server(trusted_proxies=PROXY, login_backoff=60)
    engine = live.app.state.services.engine
    for name in ("carol", "dave"):
        service.create_user(engine, name, PASSWORD, ["curator"], ["alpha"])
    shared = "203.0.113.10"  # e.g. the market's Wi-Fi: carol and an attacker share it
    sign_in(live, "carol", shared).close()
    with live.client() as attacker:
        codes = [attempt(attacker, f"staff{i}", WRONG, shared).status_code for i in range(25)]
        assert codes == [401] * 20 + [429] * 5  # the spray is bounded
        # carol has signed in from here before: the spray does not hold her back ...
        assert attempt(attacker, "carol", PASSWORD, shared).status_code == 303
    # ... and dave, whom the address never failed on, gets in from his own address.
    sign_in(live, "dave", "198.51.100.20").close()


def test_many_addresses_on_one_account_hold_back_only_new_addresses(make_server):
    live = make_server(trusted_proxies=PROXY, login_account_failures=4, login_backoff=60)
    service.create_user(live.app.state.services.engine, "root", PASSWORD, ["admin"], [])
    sign_in(live, "root", "198.51.100.1").close()
    with live.client() as c:
        assert [attempt(c, "root", WRONG, f"203.0.113.{i}").status_code
                for i in range(1, 5)] == [401] * 4
        assert attempt(c, "root", PASSWORD, "203.0.113.99").status_code == 429
    sign_in(live, "root", "198.51.100.1").close()  # the admin's usual address still works


def test_the_overall_ceiling_bounds_a_distributed_attack(make_server):
    live = make_server(trusted_proxies=PROXY, login_global_failures=6, login_backoff=60)
    engine = live.app.state.services.engine
    service.create_user(engine, "carol", PASSWORD, ["curator"], ["alpha"])
    service.create_user(engine, "erin", PASSWORD, ["curator"], ["alpha"])
    sign_in(live, "carol", "198.51.100.1").close()
    with live.client() as c:
        assert [attempt(c, f"u{i}", WRONG, f"203.0.113.{i}").status_code
                for i in range(6)] == [401] * 6
        # Beyond the ceiling, a pair that never signed in waits, whoever it is ...
        assert attempt(c, "u99", WRONG, "203.0.113.99").status_code == 429
        assert attempt(c, "erin", PASSWORD, "198.51.100.2").status_code == 429
    sign_in(live, "carol", "198.51.100.1").close()  # ... a known pair does not


def _admin(live, name: str = "root"):
    service.create_user(live.app.state.services.engine, name, PASSWORD, ["admin"], [])
    c = sign_in(live, name, "198.51.100.200")
    return c, csrf_from(c.get("/home").text)


def test_admin_unlocks_a_held_back_pair_on_the_sign_ins_page(make_server):
    live = make_server(trusted_proxies=PROXY, login_pair_failures=2, login_backoff=600)
    service.create_user(live.app.state.services.engine, "carol", PASSWORD, ["curator"], ["alpha"])
    with live.client() as c:
        assert [attempt(c, "carol", WRONG, "203.0.113.5").status_code
                for _ in range(3)] == [401, 401, 429]
    admin, csrf = _admin(live)
    try:
        page = admin.get("/admin/sign-ins")
        assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
        assert "carol" in page.text and "203.0.113.5" in page.text
        form = {"account": "carol", "address": "203.0.113.5"}
        assert admin.post("/admin/sign-ins/unlock", data=form).status_code == 403  # no CSRF
        done = admin.post("/admin/sign-ins/unlock", data={**form, "csrf": csrf})
        assert done.status_code == 200 and "2 failure(s) forgotten" in done.text
        assert "Nobody is held back" in done.text
    finally:
        admin.close()
    with live.client() as c:
        assert attempt(c, "carol", PASSWORD, "203.0.113.5").status_code == 303


def test_the_sign_ins_page_is_for_admins_only(make_server):
    live = make_server()
    service.create_user(live.app.state.services.engine, "carol", PASSWORD, ["curator"], ["alpha"])
    with live.client() as c:
        r = c.get("/admin/sign-ins")
        assert r.status_code == 303 and r.headers["location"].startswith("/login")
        attempt(c, "carol", PASSWORD, "")
        assert c.get("/admin/sign-ins").status_code == 403
        assert c.get("/account/totp").status_code == 403
        assert c.post("/admin/sign-ins/unlock", data={"csrf": "x"}).status_code == 403


@pytest.mark.parametrize("args", [["--address", "203.0.113.5"], ["carol"], []])
def test_cli_unlock(make_server, args):
    from typer.testing import CliRunner

    from holobazaar.cli import app as cli

    live = make_server(trusted_proxies=PROXY, login_pair_failures=2, login_backoff=600)
    service.create_user(live.app.state.services.engine, "carol", PASSWORD, ["curator"], ["alpha"])
    with live.client() as c:
        assert [attempt(c, "carol", WRONG, "203.0.113.5").status_code
                for _ in range(3)] == [401, 401, 429]
        where = ["--data-dir", str(live.settings.data_dir)]
        same_limits = {"HOLOBAZAAR_LOGIN_PAIR_FAILURES": "2"}
        listed = CliRunner(env=same_limits).invoke(cli, ["user", "throttled", *where])
        assert listed.exit_code == 0 and re.search(r"pair\s+carol\s+203\.0\.113\.5\s+2",
                                                   listed.output), listed.output
        done = CliRunner().invoke(cli, ["user", "unlock", *args, *where])
        assert done.exit_code == 0 and "2 failure(s)" in done.output, done.output
        assert attempt(c, "carol", PASSWORD, "203.0.113.5").status_code == 303
