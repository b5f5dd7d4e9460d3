"""Stories and recipes on displays: a subscribed display updates live (a patch through the
hub) when its farm's story is published or edited; "cook from what's here" ranks recipes
by the ingredients in stock and follows the inventory."""

from __future__ import annotations

import asyncio

from stories.helpers import MARKET, publish, recipe, story

from support.streamclient import StreamClient

CHANNEL = f"market/{MARKET}/display/zonneveld-greens"


def test_display_updates_live_when_its_story_is_published(live_server):
    headers = live_server.write_headers
    base = f"/api/v1/markets/{MARKET}/stories"

    async def scenario() -> None:
        client = StreamClient(live_server.ws_url)
        await client.connect()
        await client.hello(CHANNEL)
        await client.next("snapshot")
        before = client.views[CHANNEL].offset
        assert client.views[CHANNEL].state["bindings"]["stories"]["story"]["slug"] == \
            "tomatoes-in-the-cold-tunnel"
        with live_server.client() as http:
            doc = story("new-polder-beds", title="New beds on the polder",
                        summary="Three more hectares, mulched.",
                        beats=[{"text": "First beat", "duration": 5}])
            assert http.post(base, json=doc, headers=headers).status_code == 201
            # A draft changes nothing on the display.
            assert await client.quiet(0.3) == []
            await asyncio.to_thread(publish, http, headers, "stories", "new-polder-beds")
        patch = await client.next("patch")
        assert patch["channel"] == CHANNEL
        view = client.views[CHANNEL]
        assert view.offset == before + 1
        shown = view.state["bindings"]["stories"]["story"]
        assert shown["title"] == "New beds on the polder"
        assert shown["excerpt"] == "Three more hectares, mulched."
        assert shown["beats"] == [{"text": "First beat", "media": None, "model": None,
                                   "duration": 5.0}]
        assert "html" not in shown  # state carries plain text; full HTML is on /s/<slug>
        assert view.state["nodes"]["story"]["title"] == "New beds on the polder"
        # An edit of the published story reaches the display too.
        with live_server.client() as http:
            edited = {**doc, "title": "New beds, first harvest"}
            response = await asyncio.to_thread(
                http.put, f"{base}/new-polder-beds", json=edited, headers=headers)
            assert response.status_code == 200
        await client.next("patch")
        assert client.views[CHANNEL].state["nodes"]["story"]["title"] == \
            "New beds, first harvest"
        assert not client.violations
        await client.close()

    asyncio.run(scenario())


def test_recipes_in_stock_ranking_follows_inventory(live_server):
    headers = live_server.write_headers
    url = f"/api/v1/markets/{MARKET}/recipes/in-stock"
    with live_server.client() as http:
        ranked = http.get(url, params={"limit": 20}).json()["results"]
        haves = [r["have"] for r in ranked]
        assert haves == sorted(haves, reverse=True) and haves[0] >= 4
        by_slug = {r["slug"]: r for r in ranked}
        # Chioggia beetroot is sold out in the demo: the salad has 3 of its 4 linked.
        salad = by_slug["beetroot-and-goat-cheese-salad"]
        assert (salad["have"], salad["linked"]) == (3, 4)
        assert salad["missing"] == ["500 g Chioggia beetroot"]

        for name in ("a", "b"):
            doc = recipe(f"test-{name}", ["TOM-BRANDY", "CAR-NANTES", "KAL-NERO", "LET-BUTTER",
                                          "PUM-POTIMARRON", "HRB-BASIL", "BRD-SOURDOUGH"])
            assert http.post(f"/api/v1/markets/{MARKET}/recipes", json=doc,
                             headers=headers).status_code == 201
        publish(http, headers, "recipes", "test-a")
        top = http.get(url, params={"limit": 1}).json()["results"][0]
        assert (top["slug"], top["have"]) == ("test-a", 7)  # the draft test-b never shows
        # Two of its items sell out: it drops below recipes that have more.
        for sku in ("TOM-BRANDY", "CAR-NANTES", "KAL-NERO"):
            assert http.patch(f"/api/v1/markets/{MARKET}/items/{sku}",
                              json={"status": "sold_out", "stock": 0},
                              headers=headers).status_code == 200
        ranked = http.get(url, params={"limit": 20}).json()["results"]
        entry = next(r for r in ranked if r["slug"] == "test-a")
        assert entry["have"] == 4 and entry["missing"] == [
            "some TOM-BRANDY", "some CAR-NANTES", "some KAL-NERO"]
        assert [r["have"] for r in ranked] == sorted((r["have"] for r in ranked), reverse=True)
        # For one display: only recipes using its produce in stock.
        shown = http.get(url, params={"display": "bijenhof-honey", "limit": 20}).json()
        assert shown["results"] and all(
            {"HON-WILDFLOWER", "HON-HEATHER", "HON-COMB"} & set(r["in_stock"])
            for r in shown["results"])
        assert http.get(url, params={"display": "nope"}).status_code == 404
        state = http.get(f"/api/v1/displays/{MARKET}/zonneveld-greens/state").json()
        card = state["state"]["nodes"]["recipe-card"]["body"]
        assert "ingredients at the market today" in card


def test_recipe_card_follows_stock_of_other_stalls(live_server):
    """Eggs sell out at Kippenlust: the vegetable stall's "cook from what's here" (whose
    shakshuka needs eggs) is re-ranked live, though eggs are not sold at that stall."""
    headers = live_server.write_headers

    async def scenario() -> None:
        client = StreamClient(live_server.ws_url)
        await client.connect()
        await client.hello(CHANNEL)
        await client.next("snapshot")
        recipes = client.views[CHANNEL].state["bindings"]["stories"]["recipes"]
        assert recipes[0]["slug"] == "shakshuka-with-herbs" and recipes[0]["have"] == 5
        with live_server.client() as http:
            response = await asyncio.to_thread(
                http.patch, f"/api/v1/markets/{MARKET}/items/EGG-HEN-6",
                json={"status": "sold_out", "stock": 0}, headers=headers)
            assert response.status_code == 200
        await client.next("patch")
        recipes = client.views[CHANNEL].state["bindings"]["stories"]["recipes"]
        shakshuka = [r for r in recipes if r["slug"] == "shakshuka-with-herbs"]
        assert not shakshuka or shakshuka[0]["missing"] == ["6 pasture hen eggs"]
        assert recipes[0]["slug"] != "shakshuka-with-herbs"
        assert "Market shakshuka: 5 of 5" not in \
            client.views[CHANNEL].state["nodes"]["recipe-card"]["body"]
        await client.close()

    asyncio.run(scenario())
