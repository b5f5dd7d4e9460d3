"""Reactions and dwell reports over the real protocol: counted, refused with a reason,
rate-limited without disconnecting, and never spilling from one display onto another."""

from __future__ import annotations

import asyncio
import itertools
import time

from .reactions import DISPLAY_A, DISPLAY_B, MARKET, PULSE, device_id, display_channel, reaction
from support.live import LiveServer
from support.streamclient import joined
from support.waiting import wait_for_async


def live_view(live: LiveServer) -> dict:
    return live.app.state.services.pulse.state(MARKET)["windows"]


def test_reactions_counted_and_streamed_on_the_pulse_channel(live_server: LiveServer) -> None:
    async def scenario() -> None:
        client = await joined(live_server.ws_url, display_channel(DISPLAY_A), PULSE)
        for kind in ("love", "love", "wow", "hungry", "learn"):
            await client.send(reaction(DISPLAY_A, kind))

        def shown() -> bool:
            view = client.views[PULSE].state["windows"]["1m"]["displays"]
            return DISPLAY_A in view
        await wait_for_async(shown, 4)
        figures = client.views[PULSE].state["windows"]["1m"]["displays"][DISPLAY_A]
        assert figures["counts"] == {"love": 2, "wow": 1, "hungry": 1, "learn": 1}
        assert figures["devices"] == 5
        assert figures["mood"] == round(100 * 4.0 / 9.0)  # weights 2 + .75 + .75 + .5
        assert client.errors == []
        await client.close()

    asyncio.run(scenario())


def test_below_k_nothing_is_shown_anywhere(live_server: LiveServer) -> None:
    async def scenario() -> None:
        client = await joined(live_server.ws_url, display_channel(DISPLAY_A), PULSE)
        for _ in range(4):  # four devices: one short of k=5
            await client.send(reaction(DISPLAY_A))
        await asyncio.sleep(1.5)
        state = client.views[PULSE].state
        for window in state["windows"].values():
            assert window == {"market": None, "zones": {}, "displays": {}, "recipes": {}}
        assert live_server.app.state.services.pulse.stats["accepted_love"] == 4
        await client.close()

    asyncio.run(scenario())


def test_connection_rate_limit_errors_but_never_disconnects(live_server: LiveServer) -> None:
    async def scenario() -> None:
        client = await joined(live_server.ws_url, display_channel(DISPLAY_A))
        for _ in range(15):  # burst of 5 allowed, then 1/s; 15 fast taps: 10 refused
            await client.send(reaction(DISPLAY_A))
        await client.quiet(0.5)
        limited = [e for e in client.errors if e["code"] == "rate_limited"]
        assert len(limited) == 10, client.errors
        assert "at most 1 reaction messages/s" in limited[0]["message"]
        # Still connected and well: more limited taps than the bad-frame limit (10) do not
        # close the connection, and after a second's wait a tap counts again.
        await asyncio.sleep(1.1)
        await client.send(reaction(DISPLAY_A))
        await client.send({"type": "ping", "t0": 1})
        assert (await client.next("pong"))["t0"] == 1
        assert client.close_code is None
        assert live_server.app.state.services.pulse.stats["accepted_love"] == 6
        metrics = live_server.client().get("/metrics").text
        assert 'holobazaar_stream_events_total{event="reaction_rate_limited"} 10.0' in metrics
        await client.close()

    asyncio.run(scenario())


def test_one_device_flooding_through_many_connections(live_server: LiveServer) -> None:
    async def scenario() -> None:
        device = device_id()
        clients = [await joined(live_server.ws_url, display_channel(DISPLAY_A))
                   for _ in range(4)]
        for client in clients:  # each connection is within its own limit...
            for _ in range(3):
                await client.send(reaction(DISPLAY_A, device=device))
        for client in clients:
            await client.quiet(0.3)
        # ...but the device as a whole gets its burst of 5 and no more.
        pulse = live_server.app.state.services.pulse
        assert pulse.stats["accepted_love"] == 5
        assert pulse.stats["refused_rate_limited"] == 7
        codes = [e["code"] for c in clients for e in c.errors]
        assert codes == ["rate_limited"] * 7
        assert all(c.close_code is None for c in clients)
        metrics = live_server.client().get("/metrics").text
        assert 'holobazaar_pulse_total{event="refused_rate_limited"} 7.0' in metrics
        for client in clients:
            await client.close()

    asyncio.run(scenario())


def test_refusals_name_the_reason(live_server: LiveServer) -> None:
    async def scenario() -> None:
        client = await joined(live_server.ws_url, display_channel(DISPLAY_A))
        await client.send(reaction(DISPLAY_B))  # exists, but not joined
        error = await client.next("error")
        assert (error["code"], error["channel"]) == ("not_subscribed",
                                                     display_channel(DISPLAY_B))
        await client.send(reaction("no-such-stall"))
        error = await client.next("error")
        assert error["code"] == "unknown_display"
        await client.send({**reaction(DISPLAY_A), "market": "elsewhere"})
        assert (await client.next("error"))["code"] == "unknown_display"
        await client.send(reaction(DISPLAY_A, kind="hate"))
        error = await client.next("error")
        assert error["code"] == "unknown_kind"
        assert "love, wow, hungry, learn" in error["message"]
        await client.send({**reaction(DISPLAY_A), "device": "x"})  # not a random id
        error = await client.next("error")
        assert error["code"] == "invalid_message" and "device" in error["message"]
        await client.send({**reaction(DISPLAY_A), "text": "x" * 1001})
        error = await client.next("error")
        assert error["code"] == "invalid_message" and "text" in error["message"]
        await client.send({"type": "dwell", "market": MARKET, "display": DISPLAY_A,
                           "seconds": -3, "device": device_id()})
        error = await client.next("error")
        assert error["code"] == "invalid_message" and "seconds" in error["message"]
        pulse = live_server.app.state.services.pulse
        assert pulse.stats["refused_unknown_kind"] == 1
        assert sum(v for k, v in pulse.stats.items() if k.startswith("accepted")) == 0
        metrics = live_server.client().get("/metrics").text
        assert 'holobazaar_stream_events_total{event="error_not_subscribed"} 1.0' in metrics
        assert 'holobazaar_pulse_total{event="refused_unknown_kind"} 1.0' in metrics
        await client.close()

    asyncio.run(scenario())


def test_forged_dwell_is_clamped(live_server: LiveServer) -> None:
    async def scenario() -> None:
        client = await joined(live_server.ws_url, display_channel(DISPLAY_A))
        for seconds in (1e12, 86400, 47, 30, 300):
            await client.send({"type": "dwell", "market": MARKET, "display": DISPLAY_A,
                               "seconds": seconds, "device": device_id()})
        await client.quiet(0.3)
        assert client.errors == []
        pulse = live_server.app.state.services.pulse
        assert pulse.stats["accepted_dwell"] == 5
        assert pulse.stats["dwell_clamped"] == 3
        figures = live_view(live_server)["1m"]["displays"][DISPLAY_A]
        assert figures["dwell_reports"] == 5
        assert figures["dwell_median"] == 300  # 300, 300, 300, 30, 30: nothing above 300
        await client.close()

    asyncio.run(scenario())


def test_reactions_on_a_never_count_for_b(live_server: LiveServer) -> None:
    async def scenario() -> None:
        a = await joined(live_server.ws_url, display_channel(DISPLAY_A))
        b = await joined(live_server.ws_url, display_channel(DISPLAY_B))
        for _ in range(5):
            await a.send(reaction(DISPLAY_A, "love"))
            await b.send(reaction(DISPLAY_B, "learn"))
            await b.send(reaction(DISPLAY_A, "love"))  # b did not join A: refused
        await a.quiet(0.3)
        await b.quiet(0.1)
        view = live_view(live_server)["day"]
        assert view["displays"][DISPLAY_A]["counts"] == {"love": 5, "wow": 0, "hungry": 0,
                                                           "learn": 0}
        assert view["displays"][DISPLAY_B]["counts"] == {"love": 0, "wow": 0, "hungry": 0,
                                                           "learn": 5}
        assert view["zones"]["orchard-row"]["counts"]["learn"] == 0
        assert [e["code"] for e in b.errors] == ["not_subscribed"] * 5
        await a.close()
        await b.close()

    asyncio.run(scenario())


def test_pulse_channel_never_exceeds_one_update_per_second(live_server: LiveServer) -> None:
    async def scenario() -> None:
        watcher = await joined(live_server.ws_url, PULSE)
        tappers = [await joined(live_server.ws_url, display_channel(d))
                   for d in (DISPLAY_A, DISPLAY_B) for _ in range(6)]
        arrivals: list[float] = []

        async def watch() -> None:
            while True:
                await watcher.next("patch", timeout=10)
                arrivals.append(time.monotonic())

        watching = asyncio.create_task(watch())
        end = time.monotonic() + 4.5
        while time.monotonic() < end:  # ~12 taps/s spread over both displays
            for i, client in enumerate(tappers):
                await client.send(reaction(DISPLAY_A if i < 6 else DISPLAY_B))
            await asyncio.sleep(1.0)
        await asyncio.sleep(1.2)
        watching.cancel()
        assert len(arrivals) >= 3, arrivals
        gaps = [b - a for a, b in itertools.pairwise(arrivals)]
        assert min(gaps) > 0.8, gaps  # one publish per second; jitter of the loop only
        assert watcher.violations == []
        for client in [watcher, *tappers]:
            await client.close()

    asyncio.run(scenario())


def test_a_reaction_resent_with_its_id_is_counted_once(live_server: LiveServer) -> None:
    """The client's offline queue resends a tap it heard no `ack` for (docs/pulse.md,
    "Offline"): the same id from the same device counts once, on any connection, and each
    send is answered with `ack`; a rate-limited one names its id so it can be sent again."""
    async def scenario() -> None:
        device = device_id()
        first = await joined(live_server.ws_url, display_channel(DISPLAY_A))
        await first.send(reaction(DISPLAY_A, device=device, id="tap-0001-abcdef"))
        assert (await first.next("ack"))["reaction"] == "tap-0001-abcdef"
        await first.close()
        second = await joined(live_server.ws_url, display_channel(DISPLAY_A))
        for rid in ("tap-0001-abcdef", "tap-0002-abcdef", "tap-0001-abcdef"):
            await second.send(reaction(DISPLAY_A, device=device, id=rid))
        acks = [(await second.next("ack"))["reaction"] for _ in range(3)]
        assert acks == ["tap-0001-abcdef", "tap-0002-abcdef", "tap-0001-abcdef"]
        pulse = live_server.app.state.services.pulse
        assert pulse.stats["accepted_love"] == 2
        assert pulse.stats["duplicate_reaction"] == 2
        # Another device may use the same id: ids are per device.
        await second.send(reaction(DISPLAY_A, id="tap-0001-abcdef"))
        assert (await second.next("ack"))["reaction"] == "tap-0001-abcdef"
        assert pulse.stats["accepted_love"] == 3
        # Over the budget (burst 5): refused with the id, and not remembered as seen (the
        # client sends it again later, and then it counts).
        sent = [f"tap-000{n}-abcdef" for n in range(3, 9)]
        for rid in sent:
            await second.send(reaction(DISPLAY_A, device=device, id=rid))
        await second.quiet(0.3)
        limited = [e["reaction"] for e in second.errors if e["code"] == "rate_limited"]
        assert limited and limited == sent[len(sent) - len(limited):]
        assert not set(limited) & {rid for _, rid in pulse.accepted_ids.seen}
        # A malformed id is refused by the protocol, naming the field.
        await second.send(reaction(DISPLAY_A, id="no spaces allowed"))
        error = await second.next("error")
        assert error["code"] == "invalid_message" and "id" in error["message"]
        await second.close()

    asyncio.run(scenario())
