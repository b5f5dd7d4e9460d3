"""The studio shell: who may open a market's studio, what they are sent to otherwise, and
the navigation each role sees."""

from __future__ import annotations


def test_studio_needs_a_session_and_comes_back_after_sign_in(server, accounts):
    accounts.user("carol", ["curator"], ["alpha"])
    with server.client() as c:
        r = c.get("/studio/alpha")
        assert r.status_code == 303 and r.headers["location"] == "/login?next=%2Fstudio%2Falpha"
        r = accounts.login(c, "carol", next_url="/studio/alpha")
        assert r.headers["location"] == "/studio/alpha"
        page = c.get("/studio/alpha")
        assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
        assert 'aria-current="page">Displays' in page.text
        assert 'href="/studio/alpha/inventory"' in page.text
        assert 'href="/studio/alpha/staff"' not in page.text  # admins only


def test_another_markets_curator_gets_403_and_unknown_market_404(server, accounts):
    accounts.user("carol", ["curator"], ["alpha"])
    with server.client() as c:
        accounts.login(c, "carol")
        r = c.get("/studio/beta")
        assert r.status_code == 403 and "no curator or admin role" in r.text
        assert c.get("/studio/nowhere").status_code == 404


def test_studio_index_sends_a_one_market_curator_to_their_market(server, accounts):
    accounts.user("carol", ["curator"], ["alpha"])
    accounts.user("root", ["admin"], [])
    with server.client() as c:
        accounts.login(c, "carol")
        assert c.get("/home").text.count('href="/studio"') == 1
        r = c.get("/studio")
        assert r.status_code == 303 and r.headers["location"] == "/studio/alpha"
    with server.client() as c:
        accounts.login(c, "root")
        page = c.get("/studio")
        assert 'href="/studio/alpha"' in page.text and 'href="/studio/beta"' in page.text
        assert 'href="/studio/beta/staff"' in c.get("/studio/beta").text


def test_performer_cannot_open_the_curators_pages(server, accounts):
    accounts.user("pat", ["performer"], ["alpha"])
    with server.client() as c:
        accounts.login(c, "pat")
        r = c.get("/studio/alpha")  # a performer's studio is the shows section
        assert r.status_code == 303 and r.headers["location"] == "/studio/alpha/shows"
        r = c.get("/studio/alpha/truth")
        assert r.status_code == 403 and "no curator or admin role" in r.text
