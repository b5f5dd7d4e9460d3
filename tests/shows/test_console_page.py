"""The console page's access rules, over HTTP: sign-in first, performers of the market
only, a clear 404 for an unknown show; the page carries the CSRF token for its POSTs."""

from __future__ import annotations

import re

from holobazaar.accounts import service

from support.live import LiveServer

PASSWORD = "correct horse battery"


def sign_in(live: LiveServer, name: str, roles: list[str], markets: list[str]):
    service.create_user(live.app.state.services.engine, name, PASSWORD, roles, markets,
                        actor="test")
    http = live.client()  # the caller closes it
    form = http.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
    response = http.post("/login", data={"csrf": csrf, "username": name,
                                          "password": PASSWORD, "next": "/home"})
    assert response.status_code == 303, response.text
    return http


def test_console_needs_a_signed_in_performer_of_the_market(shared_server: LiveServer):
    with shared_server.client() as anonymous:
        response = anonymous.get("/perform/greenhaven/harvest-collective")
        assert response.status_code == 303
        assert response.headers["location"] == "/login?next=/perform/greenhaven/harvest-collective"
    curator = sign_in(shared_server, "curator1", ["curator"], ["greenhaven"])
    assert curator.get("/perform/greenhaven/harvest-collective").status_code == 403
    curator.close()
    performer = sign_in(shared_server, "performer1", ["performer"], ["greenhaven"])
    try:
        page = performer.get("/perform/greenhaven/harvest-collective")
        assert page.status_code == 200
        assert page.headers["cache-control"] == "no-store"
        assert "Harvest Collective" in page.text
        csrf = re.search(r'name="csrf-token" content="([^"]+)"', page.text).group(1)
        assert performer.get("/perform/greenhaven/nope").status_code == 404
        listing = performer.get("/perform")
        assert 'href="/perform/greenhaven/harvest-collective"' in listing.text
        # The console's POSTs: cookie + CSRF header; without the header, refused.
        url = "/api/v1/shows/greenhaven/harvest-collective/standby"
        assert performer.post(url).status_code == 403
        assert performer.post(url, headers={"X-CSRF-Token": csrf}).status_code == 200
    finally:
        performer.close()
