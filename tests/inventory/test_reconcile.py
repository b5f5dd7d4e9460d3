"""The reconciler with real WebSocket clients: every mismatch kind is detected, recorded
and corrected through the hub; the glitch drill end to end."""

from __future__ import annotations

import asyncio
import copy
import time

from holobazaar.canonical import state_hash

from .conftest import MARKET, display_state, get, post, start_inventory_server
from support.streamclient import StreamClient
from support.waiting import wait_for

ZONNEVELD = "zonneveld-greens"


def channel(display: str) -> str:
    return f"market/{MARKET}/display/{display}"


def mismatches(live, **query) -> list[dict]:
    params = "&".join(f"{k}={v}" for k, v in query.items())
    response = get(live, f"/api/v1/reconcile/{MARKET}/mismatches?{params}")
    assert response.status_code == 200, response.text
    return response.json()


def scramble(live, display: str, change) -> None:
    """Publish a wrong state through the hub, as a faulty display system would, with the
    publish guard unplugged (it would correct the state before the hub takes it:
    test_guard.py): the sweep is the line of defence behind it."""
    hub = live.app.state.services.hub
    state = copy.deepcopy(hub.snapshot(channel(display))[2])
    change(state)

    async def publish() -> None:
        guards, hub.guards = hub.guards, []
        try:
            await hub.publish(channel(display), state)
        finally:
            hub.guards = guards

    live.call(publish)


def test_price_stock_and_swap_are_detected_and_corrected(inv) -> None:
    live, _ = inv
    truth = display_state(live, ZONNEVELD)

    def wrong_price(state: dict) -> None:
        state["items"]["TOM-BRANDY"]["price"] = "0.99"

    def wrong_stock(state: dict) -> None:
        state["items"]["BEE-CHIOGGIA"]["status"] = "in_stock"  # sold out in truth

    def swapped(state: dict) -> None:
        items = state["items"]
        items["KAL-NERO"], items["LET-BUTTER"] = items["LET-BUTTER"], items["KAL-NERO"]

    for change, kind in [(wrong_price, "price"), (wrong_stock, "stock"), (swapped, "identity")]:
        scramble(live, ZONNEVELD, change)
        found = wait_for(lambda kind=kind: mismatches(live, kind=kind))
        assert found[0]["display"] == ZONNEVELD
        assert found[0]["resolved_at"] is not None and found[0]["resolution"] == "corrected"
        wait_for(lambda: display_state(live, ZONNEVELD) == truth)
    summary = get(live, f"/api/v1/reconcile/{MARKET}/summary").json()
    assert summary["time_to_correct_seconds"]["p99"] is not None
    assert summary["counts"]["corrected"] >= 3
    with live.client() as client:
        metrics = client.get("/metrics").text
    assert 'holobazaar_reconcile_mismatches_total{kind="price"} 1.0' in metrics
    assert "holobazaar_reconcile_time_to_correct_seconds" in metrics


def test_removed_bound_item_is_an_open_identity_mismatch(inv) -> None:
    live, feed = inv
    feed.push({"op": "remove", "sku": "LET-BUTTER"})
    found = wait_for(lambda: mismatches(live, kind="identity", open="true"))
    assert found[0]["sku"] == "LET-BUTTER" and found[0]["display"] == ZONNEVELD
    wait_for(lambda: get(live, f"/api/v1/reconcile/{MARKET}/summary").json()[
        "open_mismatches"]["identity"] == 1)
    assert "LET-BUTTER" not in display_state(live, ZONNEVELD)["items"]
    feed.push({"sku": "LET-BUTTER", "name": "Butterhead lettuce", "price": "1.90",
               "unit": "each"})
    wait_for(lambda: not mismatches(live, kind="identity", open="true"))


def remove_butterhead(services) -> tuple:
    """Take a bound item out of the scene service's copy: (the market, its display)."""
    market = services.scenes.market(MARKET)
    del services.scenes.items[MARKET]["LET-BUTTER"]
    return market, [market.displays[ZONNEVELD]]


def assert_butterhead_recorded_once(live) -> None:
    found = mismatches(live, kind="identity", open="true")
    assert [(m["display"], m["sku"]) for m in found] == [(ZONNEVELD, "LET-BUTTER")]


def test_checks_side_by_side_record_a_removed_item_once(inv) -> None:
    """A feed batch's check and the periodic sweep meet on the same removed item: one open
    mismatch, not one per check (each used to see it unrecorded while the other wrote)."""
    live, _ = inv
    services = live.app.state.services

    async def two_checks() -> None:
        market, displays = remove_butterhead(services)
        await asyncio.gather(services.reconciler.check(market, displays, compare=False),
                             services.reconciler.check(market, displays, compare=False))

    live.call(two_checks)
    assert_butterhead_recorded_once(live)


def test_a_check_that_fails_midway_leaves_the_removed_item_to_the_next_one(inv) -> None:
    """A check that claimed a removed item and then failed (the broker restarting while it
    publishes) writes nothing; the item is not left claimed: the next check records it."""
    live, _ = inv
    services = live.app.state.services

    async def failing_then_working_check() -> None:
        market, displays = remove_butterhead(services)
        publish = services.scenes.publish_display

        async def broken(*args, **kwargs):
            raise ConnectionError("broker restarting")

        services.scenes.publish_display = broken
        try:
            await services.reconciler.check(market, displays)
        except ConnectionError:
            pass
        finally:
            services.scenes.publish_display = publish
        await services.reconciler.check(market, displays, compare=False)

    live.call(failing_then_working_check)
    assert_butterhead_recorded_once(live)


def test_stale_feed_marks_displays_unverified(tmp_path) -> None:
    # 3 s: the checks after the feed resumes must finish before it is silent again, on a
    # loaded CI machine too.
    live, feed = start_inventory_server(tmp_path, inventory_stale_after=3.0)
    try:
        def unverified() -> bool:
            item = display_state(live, ZONNEVELD)["items"]["TOM-BRANDY"]
            return item.get("verified") is False

        wait_for(unverified)
        state = display_state(live, ZONNEVELD)
        assert "(unverified)" in state["nodes"]["tomato-price"]["text"]
        summary = get(live, f"/api/v1/reconcile/{MARKET}/summary").json()
        assert summary["displays_unverified"] == summary["displays"] == 10
        assert summary["open_mismatches"]["stale"] == 10
        feed.push({"sku": "TOM-BRANDY", "price": "6.60"})
        item = wait_for(lambda: (found := display_state(live, ZONNEVELD)["items"][
            "TOM-BRANDY"])["price"] == "6.60" and found)
        assert "verified" not in item
        stale = mismatches(live, kind="stale")
        assert sum(m["resolution"] == "feed resumed" for m in stale) == 10
    finally:
        live.stop()


def test_client_drift_is_resynced_and_recorded(inv) -> None:
    live, _ = inv

    async def scenario() -> dict:
        client = StreamClient(live.ws_url)
        await client.connect()
        await client.hello(channel(ZONNEVELD))
        snap = await client.next("snapshot")
        await client.send({"type": "heartbeat", "channel": channel(ZONNEVELD),
                           "offset": snap["offset"], "state_hash": "f" * 64})
        again = await client.next("snapshot")
        await client.close()
        return again

    again = asyncio.run(scenario())
    assert state_hash(again["state"]) == again["state_hash"]
    found = wait_for(lambda: mismatches(live, kind="client_drift"))
    assert found[0]["display"] == ZONNEVELD
    assert '"f' in found[0]["shown"] and found[0]["resolution"] == "corrected"


def test_glitch_drill_every_scramble_caught_before_any_client_sees_it(inv) -> None:
    live, feed = inv
    displays = sorted(live.app.state.services.scenes.market(MARKET).displays)
    # A held price in play too, so convergence is to the truth with its overlays.
    feed.push({"sku": "TOM-BRANDY", "price": "66.00"})
    truth = {d: display_state(live, d) for d in displays}
    assert truth[ZONNEVELD]["items"]["TOM-BRANDY"]["notice"] == "price at the stall"

    async def scenario() -> tuple[list[dict], list[StreamClient]]:
        clients = [StreamClient(live.ws_url) for _ in range(30)]
        for i, client in enumerate(clients):
            await client.connect()
            await client.hello(*[channel(d) for d in displays[i % 3::3]])
        for client in clients:
            for _ in displays[clients.index(client) % 3::3]:
                await client.next("snapshot")
        response = await asyncio.to_thread(
            post, live, f"/api/v1/reconcile/{MARKET}/drill", {"seed": 7, "displays": 6})
        assert response.status_code == 200, response.text
        scrambled = response.json()["scrambled"]

        async def converged() -> None:
            while True:
                done = all(view.state == truth[name.rsplit("/", 1)[1]]
                           for client in clients for name, view in client.views.items())
                if done:
                    return
                await asyncio.sleep(0.05)

        try:
            await asyncio.wait_for(converged(), 10)
        except TimeoutError:
            bad = {name: (view.state.get("items"), truth[name.rsplit("/", 1)[1]].get("items"))
                   for client in clients for name, view in client.views.items()
                   if view.state != truth[name.rsplit("/", 1)[1]]}
            raise AssertionError(f"not converged: {list(bad.items())[:1]}") from None
        for client in clients:
            # The publish guard corrected every scrambled state before the hub took it:
            # no client received anything but its snapshot.
            assert all(not view.applied for view in client.views.values())
        for client in clients:
            await client.close()
            assert not client.violations
        return scrambled, clients

    started = time.monotonic()
    scrambled, _ = asyncio.run(scenario())
    assert len(scrambled) == 6 and all(s["guarded"] for s in scrambled)
    found = wait_for(lambda: len({m["display"] for m in mismatches(live, limit=500)}) >= 6
                     and mismatches(live, limit=500))
    detected = {m["display"] for m in found if m["resolution"] == "guarded"}
    assert {s["display"] for s in scrambled} <= detected
    assert time.monotonic() - started < 10
    for display in displays:
        assert display_state(live, display) == truth[display]
