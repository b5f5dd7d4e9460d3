"""Client addresses: X-Forwarded-For is believed only from HOLOBAZAAR_TRUSTED_PROXIES, for
every per-address limit (sign-in throttling, community submissions)."""

from __future__ import annotations

import pytest

from holobazaar.accounts import service
from holobazaar.accounts.addresses import limit_key, parse_proxies, resolve
from holobazaar.config import Settings

from .conftest import PASSWORD, csrf_from


def test_resolve_reads_forwarded_for_from_the_right_and_only_from_trusted_peers():
    trusted = "127.0.0.1, 10.0.0.0/8"
    assert resolve("203.0.113.9", ["198.51.100.1"], trusted) == "203.0.113.9"
    assert resolve("127.0.0.1", ["198.51.100.1"], "") == "127.0.0.1"
    assert resolve("127.0.0.1", ["198.51.100.1"], trusted) == "198.51.100.1"
    # A client-made prefix is skipped: the hop the trusted proxies saw is the client.
    assert resolve("127.0.0.1", ["6.6.6.6, 198.51.100.1, 10.1.2.3"], trusted) == "198.51.100.1"
    assert resolve("127.0.0.1", ["6.6.6.6", "198.51.100.1"], trusted) == "198.51.100.1"
    assert resolve("127.0.0.1", ["not an address"], trusted) == "127.0.0.1"
    assert resolve("127.0.0.1", ["[2001:db8::1]:443"], trusted) == "2001:db8::1"
    assert resolve("::ffff:127.0.0.1", ["198.51.100.1:5555"], trusted) == "198.51.100.1"
    assert resolve(None, [], "") == "unknown"


def test_ipv6_addresses_are_limited_per_64():
    assert limit_key("2001:db8:1:2:aaaa::1") == limit_key("2001:db8:1:2:bbbb::2") \
        == "2001:db8:1:2::/64"
    assert limit_key("198.51.100.1") == "198.51.100.1"


def test_bad_trusted_proxies_are_refused_by_name():
    assert len(parse_proxies("127.0.0.1,10.0.0.0/8 , ::1")) == 3
    with pytest.raises(ValueError, match="'nginx'"):
        Settings(trusted_proxies="127.0.0.1, nginx")


def _attempt(c, name: str, password: str, forwarded: str):
    page = c.get("/login")
    return c.post("/login", headers={"X-Forwarded-For": forwarded},
                  data={"username": name, "password": password, "csrf": csrf_from(page.text)})


def test_forwarded_for_from_an_untrusted_peer_is_ignored_by_login(make_server):
    live = make_server(login_pair_failures=2, login_backoff=60)
    service.create_user(live.app.state.services.engine, "carol", PASSWORD, ["curator"], ["alpha"])
    with live.client() as c:
        codes = [_attempt(c, "carol", "wrong password!", f"198.51.100.{i}").status_code
                 for i in range(1, 5)]
    # A fresh header each time does not make a fresh address: the pair backs off.
    assert codes == [401, 401, 429, 429]


def test_forwarded_for_from_a_trusted_proxy_names_the_client(make_server):
    live = make_server(login_pair_failures=2, login_backoff=60,
                       trusted_proxies="127.0.0.1,::1")
    service.create_user(live.app.state.services.engine, "carol", PASSWORD, ["curator"], ["alpha"])
    with live.client() as c:
        codes = [_attempt(c, "carol", "wrong password!", "198.51.100.1").status_code
                 for _ in range(3)]
        assert codes == [401, 401, 429]
        assert _attempt(c, "carol", PASSWORD, "198.51.100.2").status_code == 303


SUBMISSION = {"kind": "story", "market": "alpha", "title": "Our balcony beans",
              "author": "Noor", "body": "We grew borlotti from the seed library."}


def test_forwarded_for_from_an_untrusted_peer_is_ignored_by_submissions(make_server):
    live = make_server(submission_burst=2, submission_per_hour=1)
    with live.client() as c:
        codes = [c.post("/api/v1/submissions", headers={"X-Forwarded-For": f"198.51.100.{i}"},
                        json={**SUBMISSION, "title": f"Story {i}"}).status_code
                 for i in range(1, 5)]
    assert codes == [202, 202, 429, 429]


def test_submissions_count_per_client_behind_a_trusted_proxy(make_server):
    live = make_server(submission_burst=1, submission_per_hour=1, trusted_proxies="127.0.0.1")
    with live.client() as c:
        def send(forwarded: str, i: int) -> int:
            return c.post("/api/v1/submissions", headers={"X-Forwarded-For": forwarded},
                          json={**SUBMISSION, "title": f"Story {i}"}).status_code

        assert [send("198.51.100.1", 1), send("198.51.100.1", 2),
                send("198.51.100.2", 3)] == [202, 429, 202]
