"""A grower in the stories section (#21): they write a story about their own farm, see only
their farm's stories, get 403 for another farm's, send theirs for review, and cannot
publish (a curator does)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from studio.grower_content import start

from support.accounts import Accounts, csrf_from
from support.live import LiveServer


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = start(tmp_path_factory.mktemp("grower-stories"))
    accounts = Accounts(server)
    accounts.user("hana", ["grower"], ["alpha"], farm="hill-farm")
    accounts.user("rio", ["grower"], ["alpha"], farm="river-farm")
    yield server
    server.stop()


def test_a_grower_sees_only_their_farms_stories(live: LiveServer) -> None:
    hana, rio = live.client(), live.client()
    Accounts(live).login(hana, "hana")
    Accounts(live).login(rio, "rio")
    csrf = csrf_from(hana.get("/studio/alpha/stories").text)
    made = hana.post("/studio/alpha/stories", data={"csrf": csrf, "kind": "story",
                                                    "title": "Our hill in May"})
    assert made.status_code == 303, made.text
    where = made.headers["location"]
    page = hana.get(where)
    assert page.status_code == 200 and "Publish" not in page.text
    assert "Our hill in May" not in rio.get("/studio/alpha/stories").text
    assert rio.get(where).status_code == 403
    rcsrf = csrf_from(rio.get("/studio/alpha/stories").text)
    assert rio.post(where, data={"csrf": rcsrf, "revision": "1", "title": "x"}
                    ).status_code == 403
    assert hana.post(where + "/status", data={"csrf": csrf, "to": "review"}
                     ).status_code == 303
    assert hana.post(where + "/status", data={"csrf": csrf, "to": "published"}
                     ).status_code == 403
