"""Reactions to recipe cards: validated against what the display shows (or the market's
published recipes), counted per recipe with the same k-anonymity rule, on the dashboard
and in the CSV export."""

from __future__ import annotations

import asyncio
import csv
import io

from holobazaar.pulse.aggregator import MarketPulse
from holobazaar.pulse.service import shown_recipes

from .reactions import DISPLAY_A, MARKET, PULSE, display_channel, reaction, within_one_minute
from support.live import LiveServer
from support.streamclient import joined

T0 = 1_800_000_000.0


def test_aggregator_counts_recipes_with_k_anonymity() -> None:
    pulse = MarketPulse("m")
    for i in range(4):
        pulse.add(T0 + i, f"d{i}", "stall-a", "z", "love", recipe="soup")
    pulse.add(T0 + 5, "d0", "stall-a", "z", "wow", recipe="soup")  # same device again
    pulse.add(T0 + 6, "d9", "stall-a", "z", "dwell", dwell=30, recipe="soup")  # not a tap
    pulse.add(T0 + 7, "d8", "stall-b", "z", "love")
    view = pulse.view(T0 + 10, k=5)
    # Four devices reacted to the soup: not shown, while the market (six devices) is.
    assert view["day"]["recipes"] == {} and view["day"]["market"]["devices"] == 6
    pulse.add(T0 + 8, "d4", "stall-b", "z", "hungry", recipe="soup")
    view = pulse.view(T0 + 10, k=5)
    for window in ("1m", "15m", "day"):
        soup = view[window]["recipes"]["soup"]
        assert soup["devices"] == 5
        assert soup["counts"] == {"love": 4, "wow": 1, "hungry": 1, "learn": 0}
    # A recipe reaction counts for the display it was shown on too.
    assert view["day"]["displays"]["stall-a"]["reactions"] == 5
    rows = {(r.scope, r.scope_id): r for r in pulse.closed_minutes(T0 + 120)}
    assert rows[("recipe", "soup")].figures.devices == 5


def test_shown_recipes_reads_the_cards_and_ignores_junk() -> None:
    state = {"bindings": {"stories": {"recipes": [{"slug": "a", "name": "A"}, {"x": 1}, 3]}}}
    assert shown_recipes(state) == {"a": "A"}
    assert shown_recipes({}) == {} and shown_recipes({"bindings": None}) == {}


def _cards(live: LiveServer) -> dict[str, str]:
    state = live.app.state.services.hub.snapshot(display_channel(DISPLAY_A))[2]
    return shown_recipes(state)


def test_react_to_a_recipe_card_over_the_stream(live_server: LiveServer) -> None:
    cards = _cards(live_server)
    assert cards, "the demo display should show recipe cards"
    slug = sorted(cards)[0]

    async def scenario() -> None:
        client = await joined(live_server.ws_url, display_channel(DISPLAY_A), PULSE)
        for kind in ("love", "love", "hungry", "love", "wow"):
            await client.send(reaction(DISPLAY_A, kind, recipe=slug))
        await client.quiet(0.3)
        assert client.errors == []
        await client.close()
        # A fresh connection: the first one has used its burst of five.
        client = await joined(live_server.ws_url, display_channel(DISPLAY_A))
        await client.send(reaction(DISPLAY_A, recipe="no-such-recipe"))
        error = await client.next("error")
        assert error["code"] == "unknown_recipe" and "no-such-recipe" in error["message"]
        await client.send(reaction(DISPLAY_A, recipe="Not A Slug!"))
        error = await client.next("error")
        assert error["code"] == "invalid_message" and "recipe" in error["message"]
        await client.close()

    asyncio.run(scenario())
    day = live_server.app.state.services.pulse.state(MARKET)["windows"]["day"]
    assert day["recipes"][slug]["devices"] == 5
    assert day["recipes"][slug]["counts"]["love"] == 3
    stats = live_server.app.state.services.pulse.stats
    assert stats["accepted_recipe"] == 5 and stats["refused_unknown_recipe"] == 1


def test_unpublished_recipe_is_refused(live_server: LiveServer) -> None:
    draft = {"kind": "recipe", "slug": "secret-soup", "market": MARKET, "name": "Secret soup",
             "status": "draft", "ingredients": [{"text": "kale", "sku": "KAL-NERO"}]}
    with live_server.client() as http:
        made = http.post(f"/api/v1/markets/{MARKET}/recipes", json=draft,
                         headers=live_server.write_headers)
        assert made.status_code in (200, 201), made.text

    async def scenario() -> None:
        client = await joined(live_server.ws_url, display_channel(DISPLAY_A))
        await client.send(reaction(DISPLAY_A, recipe="secret-soup"))
        error = await client.next("error")
        assert error["code"] == "unknown_recipe"
        await client.close()

    asyncio.run(scenario())


def test_dashboard_and_csv_show_top_recipes_only_from_k(live_server: LiveServer) -> None:
    slug = sorted(_cards(live_server))[0]
    name = _cards(live_server)[slug]

    async def taps(n: int) -> None:
        client = await joined(live_server.ws_url, display_channel(DISPLAY_A))
        for _ in range(n):
            await client.send(reaction(DISPLAY_A, "hungry", recipe=slug))
        await client.quiet(0.3)
        assert client.errors == []
        await client.close()

    pulse = live_server.app.state.services.pulse
    within_one_minute()  # the five devices must share one per-minute CSV row
    with live_server.client() as http:
        asyncio.run(taps(4))
        page = http.get(f"/curate/{MARKET}/pulse", headers=live_server.write_headers).text
        assert 'id="top-recipes"' not in page and "No recipe has had 5 visitors" in page
        asyncio.run(taps(1))
        live_server.call(pulse.flush, True)
        page = http.get(f"/curate/{MARKET}/pulse", headers=live_server.write_headers).text
        assert 'id="top-recipes"' in page and f'data-recipe="{slug}"' in page
        assert name in page
        exported = http.get(f"/api/v1/pulse/{MARKET}/export.csv",
                            headers=live_server.write_headers)
        rows = list(csv.DictReader(io.StringIO(exported.text)))
        recipe_rows = [r for r in rows if r["scope"] == "recipe"]
        assert [(r["scope_id"], r["devices"], r["hungry"]) for r in recipe_rows] == [
            (slug, "5", "5")]
