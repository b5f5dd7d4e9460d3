"""Property: whatever the interleaving of changes, disconnects and reconnects, a client
that resumes from its last position ends with the server's state, having applied every
patch exactly once and in order."""

from __future__ import annotations

import asyncio

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from holobazaar.canonical import state_hash

from support.live import LiveServer
from support.streamclient import StreamClient

MARKET = "greenhaven"
CHANNELS = [f"market/{MARKET}/display/zonneveld-greens",
            f"market/{MARKET}/display/wilde-boomgaard"]
SKUS = ["TOM-BRANDY", "CAR-NANTES", "APL-ELSTAR"]

actions = st.lists(
    st.one_of(
        st.tuples(st.just("change"), st.sampled_from(SKUS), st.integers(100, 99_999)),
        st.tuples(st.just("burst"), st.sampled_from(SKUS), st.integers(2, 6)),
        st.tuples(st.just("drop")),
        st.tuples(st.just("reconnect")),
    ),
    min_size=1, max_size=14,
)


def _skus(server: LiveServer) -> list[str]:
    items = httpx.get(f"{server.url}/api/v1/markets/{MARKET}/items").json()
    return [i["sku"] for i in items]


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps=actions)
def test_resume_never_skips_or_duplicates(shared_server: LiveServer, steps) -> None:
    known = set(_skus(shared_server))
    assert set(SKUS) <= known

    async def scenario() -> StreamClient:
        client = StreamClient(shared_server.ws_url)
        await client.connect()
        await client.hello(*CHANNELS)
        for channel in CHANNELS:
            await client.wait_offset(channel, 0)
        connected = True
        async with httpx.AsyncClient(base_url=shared_server.url,
                                     headers=shared_server.write_headers) as http:
            for step in steps:
                if step[0] == "change":
                    _, sku, cents = step
                    await http.patch(f"/api/v1/markets/{MARKET}/items/{sku}",
                                     json={"price": f"{cents / 100:.2f}", "confirm": True})
                elif step[0] == "burst":
                    _, sku, count = step
                    await asyncio.gather(*(
                        http.patch(f"/api/v1/markets/{MARKET}/items/{sku}",
                                   json={"price": f"{(n + 1) * 1.11:.2f}",
                                         "confirm": True})
                        for n in range(count)))
                elif step[0] == "drop" and connected:
                    await client.close()
                    connected = False
                elif step[0] == "reconnect":
                    if connected:
                        await client.close()
                    await client.connect()
                    await client.hello(*CHANNELS, resume=True)
                    connected = True
            if not connected:
                await client.connect()
                await client.hello(*CHANNELS, resume=True)
            for channel in CHANNELS:
                head = (await http.get(
                    f"/api/v1/displays/{MARKET}/{channel.rsplit('/', 1)[1]}/state")).json()
                await client.wait_offset(channel, head["offset"])
        await client.close()
        return client

    client = asyncio.run(scenario())
    assert not client.violations, client.violations
    assert client.snapshots == len(CHANNELS), "resumes were served from history"
    for channel in CHANNELS:
        display = channel.rsplit("/", 1)[1]
        head = httpx.get(f"{shared_server.url}/api/v1/displays/{MARKET}/{display}/state").json()
        view = client.views[channel]
        assert view.offset == head["offset"]
        assert view.state == head["state"]
        assert state_hash(view.state) == head["state_hash"]
        applied = view.applied
        assert applied == sorted(set(applied)), "each patch once, in order"
