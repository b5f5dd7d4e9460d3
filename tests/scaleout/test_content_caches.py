"""Per-node copies of published stories follow changes made on another node: a story
published on node A is on every node's displays, and a later change composed on node B
keeps it (a stale copy on B would put the old story back)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from scaleout.nodes import CHANNEL, ITEM_PATH, subscribed
from stories.helpers import publish, story

from support.streamclient import StreamClient

pytestmark = [pytest.mark.redis, pytest.mark.postgres]


def test_a_story_published_on_one_node_stays_on_every_node(cluster):
    a, b = cluster.nodes[:2]
    headers = cluster.write_headers
    slug = "cluster-wide-story"

    async def scenario() -> list[StreamClient]:
        clients = await subscribed([a, b], CHANNEL)
        with httpx.Client(base_url=a.url, timeout=10) as http:
            doc = story(slug, title="Shared across the cluster", summary="One truth.")
            assert http.post("/api/v1/markets/greenhaven/stories", json=doc,
                             headers=headers).status_code == 201
            await asyncio.to_thread(publish, http, headers, "stories", slug)
        async with httpx.AsyncClient(timeout=10) as http:
            # A change composed on B: B's copy of the stories must already be current.
            response = await http.patch(f"{b.url}{ITEM_PATH}", json={"price": "41.00",
                                                                     "confirm": True},
                                        headers=headers)
            assert response.status_code == 200, response.text
        async with asyncio.timeout(15):
            while not all(
                c.views[CHANNEL].state["items"]["TOM-BRANDY"]["price"] == "41.00"
                for c in clients):
                await asyncio.sleep(0.02)
        await asyncio.sleep(0.5)  # anything still on its way
        for client in clients:
            await client.close()
        return clients

    clients = asyncio.run(scenario())
    for client in clients:
        assert not client.violations
        shown = client.views[CHANNEL].state["bindings"]["stories"]["story"]
        assert shown["slug"] == slug and shown["title"] == "Shared across the cluster"
    assert clients[0].views[CHANNEL].state == clients[1].views[CHANNEL].state
