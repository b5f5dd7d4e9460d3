"""The staff channel market/<m>/truth on a real server with a real WebSocket client: a
curator subscribed to it hears of a held change when it is created and when it is
approved; a visitor, another market's curator and a performer are refused; the truth and
moderation pages carry a pass that joins it."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator

import pytest

from studio.inventory_content import configure_feed, push, start

from support.accounts import Accounts, csrf_from
from support.live import LiveServer
from support.streamclient import StreamClient

CHANNEL = "market/alpha/truth"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = start(tmp_path_factory.mktemp("truth-channel"), reconcile_interval=0.2)
    accounts = Accounts(server)
    accounts.user("carol", ["curator"], ["alpha"])
    accounts.user("bea", ["curator"], ["beta"])
    yield server
    server.stop()


async def _subscribe(live: LiveServer, token: str | None) -> StreamClient:
    client = StreamClient(live.ws_url)
    await client.connect()
    await client.hello(CHANNEL, **({"token": token} if token else {}))
    return client


def test_a_curator_hears_of_a_held_change_created_and_approved(live):
    accounts = Accounts(live)
    token = accounts.token(["curator"], ["alpha"])
    secret = configure_feed(live)

    async def scenario() -> list[dict]:
        client = await _subscribe(live, token)
        try:
            await client.next("snapshot")
            before = client.views[CHANNEL].state
            assert before["held"] == 0 and set(before) >= {"mismatches", "moderation"}
            await asyncio.to_thread(push, live, secret, {"sku": "APL-1", "price": "9.99"})
            await client.next("patch", timeout=10)
            created = dict(client.views[CHANNEL].state)
            assert created["held"] == 1 and created["held_sig"] != before["held_sig"]
            http = live.client()
            http.headers["Authorization"] = f"Bearer {token}"
            held = http.get("/api/v1/reconcile/alpha/held").json()[0]["id"]
            r = await asyncio.to_thread(
                http.post, f"/api/v1/reconcile/alpha/held/{held}/approve",
                json={"reason": "new season"})
            assert r.status_code == 200, r.text
            while client.views[CHANNEL].state["held"] != 0:
                await client.next("patch", timeout=10)
            return client.errors
        finally:
            await client.close()

    assert asyncio.run(scenario()) == []


@pytest.mark.parametrize("who", ["visitor", "beta curator", "performer"])
def test_others_are_refused_the_channel(live, who):
    accounts = Accounts(live)
    token = {"visitor": None, "beta curator": accounts.token(["curator"], ["beta"]),
             "performer": accounts.token(["performer"], ["alpha"])}[who]

    async def scenario() -> tuple[list[dict], bool]:
        client = await _subscribe(live, token)
        try:
            error = await client.next("error")
            return [error], CHANNEL in client.views
        finally:
            await client.close()

    errors, joined = asyncio.run(scenario())
    assert not joined and errors[0]["code"] in {"forbidden", "unauthorized", "unknown_channel"}


@pytest.mark.parametrize("section", ["truth", "moderation"])
def test_the_pages_pass_joins_the_channel(live, section):
    http = live.client()
    Accounts(live).login(http, "carol")
    page = http.get(f"/studio/alpha/{section}")
    assert page.status_code == 200 and csrf_from(page.text)
    token = re.search(r'data-pass="([^"]+)"', page.text)
    assert token is not None and CHANNEL in page.text

    async def scenario() -> dict:
        client = await _subscribe(live, token.group(1))
        try:
            await client.next("snapshot")
            return client.views[CHANNEL].state
        finally:
            await client.close()

    assert asyncio.run(scenario())["market"] == "alpha"
