"""Shared permessage-deflate on `/ws`: a snapshot is compressed once for every client that
asked for compression, small frames go as they are, and clients with and without it
agree."""

from __future__ import annotations

import asyncio
import json
import secrets

import jsonpatch

from holobazaar.canonical import state_hash
from holobazaar.stream.wire import DEFLATE_MIN_BYTES

from .rawws import RawWebSocket, window
from support.demo import DEMO_CHANNEL, DEMO_SKU, set_price
from support.streamclient import StreamClient


def test_deflate_compresses_snapshots_once_and_leaves_small_frames_plain(shared_server):
    offers = {
        "plain": None,
        "deflate": "permessage-deflate; client_max_window_bits",
        "no_context_takeover": ("permessage-deflate; server_no_context_takeover; "
                                "client_max_window_bits"),
        "small_window": "permessage-deflate; server_max_window_bits=10",
    }
    clients = {name: RawWebSocket(shared_server.settings.port, offer)
               for name, offer in offers.items()}
    try:
        snapshots = {}
        for name, ws in clients.items():
            if offers[name] is None:
                assert ws.extension == ""
            else:
                # Always without context takeover: one compressed frame fits every client.
                assert "permessage-deflate" in ws.extension
                assert "server_no_context_takeover" in ws.extension
            wbits = window(ws.extension)
            rsv1, welcome = ws.message(wbits)
            assert welcome["type"] == "welcome" and not rsv1
            ws.send({"type": "hello", "protocol": 1, "subscribe": [{"channel": DEMO_CHANNEL}]})
            rsv1, snapshot = ws.message(wbits)
            assert snapshot["type"] == "snapshot"
            assert len(json.dumps(snapshot)) > DEFLATE_MIN_BYTES
            assert rsv1 == (offers[name] is not None)
            assert state_hash(snapshot["state"]) == snapshot["state_hash"]
            snapshots[name] = snapshot
        assert len({json.dumps(s, sort_keys=True) for s in snapshots.values()}) == 1
        price = f"{3 + secrets.randbelow(500) / 100:.2f}"
        set_price(shared_server.url, shared_server.write_headers, price)
        for name, ws in clients.items():
            rsv1, patch = ws.message(window(ws.extension))
            assert patch["type"] == "patch" and not rsv1  # small: sent as it is
            state = jsonpatch.apply_patch(snapshots[name]["state"], patch["ops"])
            assert state["items"][DEMO_SKU]["price"] == price
    finally:
        for ws in clients.values():
            ws.close()


def test_real_clients_with_and_without_compression_agree(shared_server):
    async def scenario():
        clients = [StreamClient(shared_server.ws_url) for _ in range(6)]
        for i, client in enumerate(clients):
            await client.connect(compression="deflate" if i % 2 else None)
            await client.hello(DEMO_CHANNEL)
            await client.next("snapshot")
        for step in range(3):
            price = f"{5 + step + secrets.randbelow(90) / 100:.2f}"
            await asyncio.to_thread(set_price, shared_server.url,
                                    shared_server.write_headers, price)
        head = shared_server.app.state.services.hub.channels[DEMO_CHANNEL].offset
        for client in clients:
            await client.wait_offset(DEMO_CHANNEL, head)
            await client.close()
        return clients

    clients = asyncio.run(scenario())
    states = {json.dumps(c.views[DEMO_CHANNEL].state, sort_keys=True) for c in clients}
    assert len(states) == 1 and not any(c.violations for c in clients)
