"""Staff accounts for tests: users and tokens created directly in a live server's database,
and a signed-in httpx client (the login form, its CSRF token, the session cookie)."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx

from holobazaar.accounts import service

from support.live import LiveServer

PASSWORD = "correct horse battery"

class Accounts:
    """Creates users and tokens directly in a live server's database."""

    def __init__(self, live: LiveServer) -> None:
        self.live = live
        self.engine = live.app.state.services.engine  # type: ignore[attr-defined]

    def user(self, name: str, roles: list[str], markets: list[str],
             password: str = PASSWORD, farm: str | None = None) -> str:
        """A user; a grower also needs `farm` (one market)."""
        service.create_user(self.engine, name, password, roles, markets, actor="test",
                            farm=farm)
        return name

    def token(self, roles: list[str], markets: list[str], name: str | None = None,
              expires: timedelta | None = None) -> str:
        name = name or f"t{len(service.list_tokens(self.engine))}-{'-'.join(roles)}"
        token, _ = service.create_token(self.engine, name, roles, markets, expires,
                                        actor="test")
        return token

    def login(self, client: httpx.Client, name: str, password: str = PASSWORD,
              next_url: str = "/home") -> httpx.Response:
        page = client.get("/login")
        csrf = csrf_from(page.text)
        return client.post("/login", data={"username": name, "password": password,
                                           "csrf": csrf, "next": next_url})


def csrf_from(html: str) -> str:
    match = re.search(r'name="(?:csrf|csrf-token)" (?:value|content)="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)
