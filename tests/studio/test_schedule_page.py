"""The studio's schedule page (#24): a market's scheduled display and story publishes (with
their cancel URLs), the shows' next starts and the dayparted displays' next changes, the
"preview at a time" form leading to the state at ?at=; 403 for another market's curator;
what curators wrote is HTML-escaped; screenshots at 390x844 and 1440x900."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from holobazaar.scenes.clock import ManualClock
from timeofday.content import DISPLAY, MARKET, schedule_content

from support.accounts import Accounts
from support.live import LiveServer, start_server

NOW = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)  # a Friday, 09:00 in Amsterdam
PAGE = f"/studio/{MARKET}/schedule"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("schedule-page")
    server = start_server(root, clock=ManualClock(NOW), watch=False,
                          content_dir=schedule_content(root / "content"))
    accounts = Accounts(server)
    accounts.user("carol", ["curator"], [MARKET])
    accounts.user("bea", ["curator"], ["elsewhere"])
    headers = server.write_headers
    base = f"/api/v1/markets/{MARKET}/displays/{DISPLAY}"
    with server.client() as http:
        source = http.get(f"{base}/source", headers=headers)
        draft = copy.deepcopy(source.json())
        draft["display"]["title"] = "<b>Winter</b> bread"
        made = http.post(f"{base}/schedule", json={"at": "2026-11-21T09:00", "document": draft},
                         headers={**headers, "If-Match": source.headers["ETag"]})
        assert made.status_code == 201, made.text
        story = f"/api/v1/markets/{MARKET}/stories"
        assert http.post(story, headers=headers, json={
            "kind": "story", "slug": "harvest", "title": "<b>Harvest</b>", "body": "Text.",
            "producers": ["zonneveld"]}).status_code == 201
        assert http.post(f"{story}/harvest/status", headers=headers,
                         json={"status": "review"}).status_code == 200
        assert http.post(f"{story}/harvest/schedule", headers=headers,
                         json={"at": "2026-11-22T10:00"}).status_code == 201
    yield server
    server.stop()


def signed_in(live: LiveServer, name: str) -> httpx.Client:
    client = live.client()
    Accounts(live).login(client, name)
    return client


def test_the_page_lists_what_is_scheduled(live: LiveServer) -> None:
    html = signed_in(live, "carol").get(PAGE)
    assert html.status_code == 200, html.text
    main = html.text.split("<main", 1)[1]
    assert f'href="/studio/{MARKET}/schedule"' in html.text  # in the navigation
    assert "Sat 21 Nov 2026 09:00" in main and f"Display {DISPLAY}" in main
    assert f'data-cancel="/api/v1/markets/{MARKET}/displays/{DISPLAY}/schedule/1"' in main
    assert f'data-cancel="/api/v1/markets/{MARKET}/stories/harvest/schedule/' in main
    assert "Story harvest: publish" in main
    assert "Market bell" in main and "Sat 21 Nov 2026 11:00" in main  # the show's start
    assert "breakfast" in main and "Fri 20 Nov 2026 11:00" in main  # a variant edge
    # What curators wrote is text, never markup.
    assert "&lt;b&gt;Winter&lt;/b&gt; bread" in main and "<b>" not in main


def test_preview_at_a_time_and_refusals(live: LiveServer) -> None:
    client = signed_in(live, "carol")
    went = client.get(f"{PAGE}/preview", params={"display": DISPLAY, "at": "2026-11-21T08:00"})
    assert went.status_code == 303
    assert went.headers["location"] == \
        f"/api/v1/displays/{MARKET}/{DISPLAY}/state?at=2026-11-21T08%3A00"
    state = client.get(went.headers["location"]).json()["state"]
    assert state["schedule"]["variant"] == "breakfast"
    bad = client.get(f"{PAGE}/preview", params={"display": DISPLAY, "at": "tomorrow"})
    assert bad.status_code == 422 and 'id="at-err"' in bad.text
    assert client.get(f"{PAGE}/preview", params={"display": "nope", "at": "2026-11-21T08:00"}
                      ).status_code == 422
    other = signed_in(live, "bea")
    assert other.get(PAGE).status_code == 403
    assert other.get(f"{PAGE}/preview", params={"display": DISPLAY, "at": "x"}
                     ).status_code == 403
