"""/home as the staff landing page: what needs attention now in each market the user may
see (held changes, open mismatches, submissions waiting, a silent feed), linking into the
studio; nothing of another market."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from studio.inventory_content import configure_feed, push, start

from support.accounts import Accounts
from support.live import LiveServer


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    server = start(tmp_path, inventory_stale_after=0.5, reconcile_interval=0.2)
    yield server
    server.stop()


def test_home_lists_what_needs_attention_per_market_with_links(live):
    staff = Accounts(live)
    staff.user("carol", ["curator"], ["alpha"])
    staff.user("root", ["admin"], [])
    with live.client() as client:
        staff.login(client, "carol")
        calm = client.get("/home").text
        assert "Needs attention now" in calm and "Nothing waiting" in calm
        assert 'href="/studio/alpha"' in calm and "Market beta" not in calm
    secret = configure_feed(live)
    push(live, secret, {"sku": "APL-1", "price": "9.99"})  # held
    with live.client() as client:
        response = client.post("/api/v1/submissions", json={
            "kind": "story", "market": "alpha", "title": "Our apples",
            "body": "Grown on the hill."})
        assert response.status_code in (200, 201, 202), response.text
        staff.login(client, "carol")
        page = client.get("/home").text
        assert 'href="/studio/alpha/truth#held-h"' in page
        assert "1</span>held change waits for a curator" in page
        assert 'href="/studio/alpha/moderation"' in page
        assert "1</span>submission or note waits for moderation" in page
    import time
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # the feed falls silent after 0.5 s
        with live.client() as client:
            staff.login(client, "root")
            page = client.get("/home").text
        if "the inventory feed is silent" in page:
            break
        time.sleep(0.2)
    assert 'href="/studio/alpha/inventory#feed"' in page
    assert "Market alpha" in page and "Market beta" in page  # an admin sees every market


def test_home_without_staff_roles_has_no_attention_list(live):
    staff = Accounts(live)
    staff.user("pat", ["performer"], ["alpha"])
    with live.client() as client:
        staff.login(client, "pat")
        page = client.get("/home").text
        assert "Needs attention now" not in page and 'href="/perform"' in page
