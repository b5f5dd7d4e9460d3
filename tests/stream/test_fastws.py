"""`/ws` served straight from uvicorn's protocol (stream/fastws.py) against a real server:
connect bursts, idle memory per connection, order and refusals, what a connection keeps,
and the plain ASGI fallback."""

from __future__ import annotations

import asyncio
import secrets
import struct

from .rawws import RawWebSocket
from support.demo import DEMO_CHANNEL, DEMO_MARKET, DEMO_SKU, set_price
from support.live import start_server
from support.processes import serve, status_kb
from support.streamclient import StreamClient


def test_a_burst_of_clients_all_get_correct_snapshots_while_changes_flow(shared_server):
    async def scenario():
        clients = [StreamClient(shared_server.ws_url) for _ in range(200)]

        async def join(client: StreamClient) -> None:
            await client.connect()
            await client.hello(DEMO_CHANNEL)

        async def changes() -> None:
            for step in range(5):
                price = f"{7 + step + secrets.randbelow(90) / 100:.2f}"
                await asyncio.to_thread(set_price, shared_server.url,
                                        shared_server.write_headers, price)

        await asyncio.gather(changes(), *(join(c) for c in clients))
        await asyncio.gather(*(c.next("snapshot", timeout=15) for c in clients))
        head = shared_server.app.state.services.hub.channels[DEMO_CHANNEL].offset
        await asyncio.gather(*(c.wait_offset(DEMO_CHANNEL, head, timeout=15) for c in clients))
        await asyncio.gather(*(c.close() for c in clients))
        return clients, head

    clients, head = asyncio.run(scenario())
    expected = shared_server.app.state.services.hub.snapshot(DEMO_CHANNEL)
    for client in clients:
        assert client.snapshots == 1 and not client.violations
        assert client.views[DEMO_CHANNEL].offset == head
        assert client.views[DEMO_CHANNEL].state == expected[2]


def test_an_idle_connection_costs_little_server_memory(tmp_path):
    """A generous bound: an idle `/ws` connection (served directly by fastws: no task,
    no ASGI objects) measures about 17 KB of server RSS here at 300 connections (allocator
    steps included), about 6 KB of it Python objects (issue #10 asks for 12 KB;
    docs/performance.md). The benchmark reports the figure at 10,000 clients."""
    count = 300
    with serve(tmp_path, "--log-level", "warning", data_dir=tmp_path / "var",
               timeout=30) as server:
        async def scenario():
            warm = [StreamClient(server.ws_url) for _ in range(20)]  # allocator, caches warm
            for client in warm:
                await client.connect()
                await client.hello(DEMO_CHANNEL)
                await client.next("snapshot")
            await asyncio.sleep(0.5)
            before = status_kb(server.pid)
            clients = [StreamClient(server.ws_url) for _ in range(count)]
            for chunk in range(0, count, 50):
                batch = clients[chunk:chunk + 50]
                await asyncio.gather(*(c.connect() for c in batch))
                await asyncio.gather(*(c.hello(DEMO_CHANNEL) for c in batch))
                await asyncio.gather(*(c.next("snapshot") for c in batch))
            await asyncio.sleep(1.0)
            after = status_kb(server.pid)
            await asyncio.gather(*(c.close() for c in [*warm, *clients]))
            return before, after

        before, after = asyncio.run(scenario())
    per_connection_kb = (after - before) / count
    print(f"idle connection: {per_connection_kb:.1f} KB of server RSS")
    assert per_connection_kb < 30, per_connection_kb


def test_plain_uvicorn_websockets_still_serve_the_stream(tmp_path):
    server = start_server(tmp_path, ws="auto")
    try:
        async def scenario():
            client = StreamClient(server.ws_url)
            await client.connect()
            await client.hello(DEMO_CHANNEL)
            snapshot = await client.next("snapshot")
            await asyncio.to_thread(set_price, server.url, server.write_headers, "9.99")
            patch = await client.next("patch")
            await client.send({"type": "nonsense"})
            error = await client.next("error")
            await client.close()
            return client, snapshot, patch, error

        client, snapshot, patch, error = asyncio.run(scenario())
        assert patch["offset"] == snapshot["offset"] + 1 and "from" not in patch
        assert client.views[DEMO_CHANNEL].state["items"][DEMO_SKU]["price"] == "9.99"
        assert error["code"] == "unknown_type" and not client.violations
    finally:
        server.stop()


def test_frames_sent_right_after_hello_wait_for_it_in_order(shared_server):
    """The hello runs as a task (it may wait for history); what follows it on the wire is
    handled after it, in order, never as 'not subscribed'."""
    async def scenario():
        client = StreamClient(shared_server.ws_url)
        await client.connect()
        zone = f"market/{DEMO_MARKET}/zone/orchard-row"
        await client.send({"type": "hello", "protocol": 1,
                           "subscribe": [{"channel": DEMO_CHANNEL}, {"channel": zone}]})
        await client.send({"type": "ping", "t0": 1.0})
        await client.send({"type": "leave", "channel": zone})
        await client.send({"type": "ping", "t0": 2.0})
        frames = [await client.next() for _ in range(4)]
        extra = await client.quiet(0.3)
        await client.close()
        return frames, extra

    frames, extra = asyncio.run(scenario())
    assert [f["type"] for f in frames] == ["snapshot", "snapshot", "pong", "pong"]
    assert [f["t0"] for f in frames[2:]] == [1.0, 2.0]
    assert not [f for f in extra if f["type"] == "error"], extra


def test_binary_and_invalid_utf8_frames_are_refused_as_before(shared_server):
    ws = RawWebSocket(shared_server.settings.port, None)
    try:
        assert ws.message(15)[1]["type"] == "welcome"
        mask = b"\x00\x00\x00\x00"
        ws.sock.sendall(bytes((0x82, 0x80 | 3)) + mask + b"abc")  # binary frame
        _, error = ws.message(15)
        assert error == {"type": "error", "code": "binary_not_supported",
                         "message": "send JSON text frames"}
        ws.sock.sendall(bytes((0x81, 0x80 | 2)) + mask + b"\xc3\x28")  # bad UTF-8
        _, opcode, payload = ws.frame()
        assert opcode == 8 and struct.unpack("!H", payload[:2])[0] == 1007
    finally:
        ws.close()


def test_upgraded_connections_leave_nothing_for_the_cyclic_gc(shared_server):
    """uvicorn's HTTP protocol and its httptools parser point at each other, and only the
    HTTP protocol's connection_lost broke that cycle, which an upgraded connection never
    reaches: every WebSocket left ~18 objects for the cyclic GC, and 8,000 devices
    connecting spent a third of the server's CPU in it. fastws breaks the cycle."""
    import gc

    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    def http_protocols() -> int:
        return sum(1 for o in gc.get_objects() if type(o) is HttpToolsProtocol)

    async def scenario() -> int:
        clients = [StreamClient(shared_server.ws_url) for _ in range(40)]
        try:
            await asyncio.gather(*(c.connect() for c in clients))
            await asyncio.gather(*(c.hello(DEMO_CHANNEL) for c in clients))
            await asyncio.gather(*(c.next("snapshot") for c in clients))
            return http_protocols()
        finally:
            await asyncio.gather(*(c.close() for c in clients))

    gc.collect()
    before = http_protocols()
    gc.disable()  # what is left must be freed without it
    try:
        after = asyncio.run(scenario())
    finally:
        gc.enable()
    assert after - before < 5, f"{after - before} upgraded HTTP protocols wait for the GC"


def test_a_direct_connection_keeps_no_spare_protocol_headers_or_attribute_table(
        shared_server):
    """What a connection keeps, for 10,000 of them on a node: one websockets protocol
    (uvicorn builds one that fastws replaces: it must be freed at once, not wait for the
    GC), no handshake headers (websockets' parser keeps the Request for the connection's
    life) and uvicorn's attributes in slots (over 30 in an instance dict cost ~1.6 KB)."""
    import gc

    from websockets.http11 import Request
    from websockets.server import ServerProtocol

    from holobazaar.stream.fastws import StreamWebSocketProtocol

    def objects(kind: type) -> list:
        return [o for o in gc.get_objects() if type(o) is kind]

    count = 40

    async def scenario() -> tuple[int, list, list]:
        clients = [StreamClient(shared_server.ws_url) for _ in range(count)]
        try:
            await asyncio.gather(*(c.connect() for c in clients))
            await asyncio.gather(*(c.hello(DEMO_CHANNEL) for c in clients))
            await asyncio.gather(*(c.next("snapshot") for c in clients))
            direct = [p for p in objects(StreamWebSocketProtocol)
                      if p.direct is not None and not p.close_sent]
            # The Request the server parsed lives on as a local of websockets' parser.
            requests = [p.conn.parser.gi_frame.f_locals.get("request") for p in direct]
            return len(objects(ServerProtocol)), direct, requests
        finally:
            await asyncio.gather(*(c.close() for c in clients))

    gc.collect()
    before = len(objects(ServerProtocol))
    gc.disable()
    try:
        after, direct, requests = asyncio.run(scenario())
    finally:
        gc.enable()
    assert after - before < count + 5, f"{after - before} protocols for {count} connections"
    assert len(direct) >= count
    assert all(len(vars(p)) <= 2 for p in direct), max(len(vars(p)) for p in direct)
    assert all(isinstance(r, Request) and len(r.headers) == 0 for r in requests)
