"""Quick server-side fan-out probe for tuning (the full benchmark is bench/fanout.py).

Runs the real app (uvicorn with the /ws fast path) in a thread of this process, N raw
WebSocket clients in a separate process (a minimal asyncio protocol that only counts
frames, so the client side stays cheap), publishes changes into the hub at a rate, and
prints the server thread's CPU time per delivered frame (CPU time, not wall clock: the
machine is shared).

    python bench/fanout_quick.py --clients 2000 --rate 10 --seconds 10 [--deflate]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import multiprocessing as mp
import os
import secrets
import struct
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.environ.get("HOLOBAZAAR_TESTS_DIR",
                                  str(Path(__file__).resolve().parent.parent / "tests")))

CHANNEL = "market/bench/display/quick"


class Counter(asyncio.Protocol):
    def __init__(self, totals: dict, deflate: bool) -> None:
        self.totals, self.deflate = totals, deflate
        self.buf = b""
        self.open = False

    def connection_made(self, transport) -> None:  # type: ignore[override]
        self.transport = transport
        key = base64.b64encode(secrets.token_bytes(16)).decode()
        ext = "Sec-WebSocket-Extensions: permessage-deflate\r\n" if self.deflate else ""
        transport.write((f"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                         f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                         f"Sec-WebSocket-Version: 13\r\n{ext}\r\n").encode())

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data
        if not self.open:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self.buf = buf
                return
            buf, self.open = buf[end + 4:], True
            hello = (b'{"type":"hello","protocol":1,"subscribe":[{"channel":"'
                     + CHANNEL.encode() + b'"}]}')
            mask = b"\x00\x00\x00\x00"
            self.transport.write(bytes((0x81, 0x80 | len(hello))) + mask + hello)
        pos, n = 0, len(buf)
        frames = 0
        while n - pos >= 2:
            size = buf[pos + 1] & 0x7F
            head = 2
            if size == 126:
                if n - pos < 4:
                    break
                size = struct.unpack_from("!H", buf, pos + 2)[0]
                head = 4
            elif size == 127:
                if n - pos < 10:
                    break
                size = struct.unpack_from("!Q", buf, pos + 2)[0]
                head = 10
            if n - pos < head + size:
                break
            pos += head + size
            frames += 1
        self.buf = buf[pos:]
        self.totals["frames"] += frames


def clients(port: int, count: int, deflate: bool, seconds: float, ready, results) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        totals = {"frames": 0}
        for _ in range(count):
            await loop.create_connection(lambda: Counter(totals, deflate), "127.0.0.1", port)
        await asyncio.sleep(2)
        ready.put(totals["frames"])
        start = totals["frames"]
        await asyncio.sleep(seconds + 5)
        results.put(totals["frames"] - start)

    try:
        import uvloop
        uvloop.run(main())
    except ImportError:
        asyncio.run(main())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--deflate", action="store_true")
    parser.add_argument("--state-items", type=int, default=20)
    args = parser.parse_args()

    try:  # what `holobazaar serve` runs on (uvicorn's loop="auto")
        import uvloop
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    from support.live import start_server  # tests/support.py: the real app under uvicorn

    server = start_server(Path(tempfile.mkdtemp()))
    hub = server.app.state.services.hub
    state = {"items": {f"SKU-{i}": {"price": f"{i}.00", "stock": i} for i in
                       range(args.state_items)}}
    server.call(hub.publish, CHANNEL, state)
    clock = time.pthread_getcpuclockid(server.thread.ident)
    ctx = mp.get_context("spawn")
    ready, results = ctx.Queue(), ctx.Queue()
    proc = ctx.Process(target=clients, args=(server.settings.port, args.clients,
                                             args.deflate, args.seconds, ready, results))
    proc.start()
    ready.get(timeout=120)
    cpu0, wall0 = time.clock_gettime(clock), time.monotonic()
    sent = 0
    step = 1.0 / args.rate
    while time.monotonic() - wall0 < args.seconds:
        sent += 1
        state = {"items": {**state["items"], f"SKU-{sent % args.state_items}":
                           {"price": f"{sent}.{sent % 100:02d}", "stock": sent}}}
        server.call(hub.publish, CHANNEL, state)
        time.sleep(max(0.0, wall0 + sent * step - time.monotonic()))
    time.sleep(2)
    cpu = time.clock_gettime(clock) - cpu0
    delivered = results.get(timeout=60)
    proc.join(30)
    expected = sent * args.clients
    print(f"clients={args.clients} rate={args.rate}/s changes={sent} deflate={args.deflate}")
    print(f"frames delivered {delivered} of {expected} changes x clients "
          f"({hub.stats.get('coalesced', 0)} merged frames built)")
    print(f"server thread CPU {cpu:.2f} s = {cpu / max(delivered, 1) * 1e6:.2f} us per "
          f"delivered frame, {cpu / max(expected, 1) * 1e6:.2f} us per change x client")
    server.stop()
    os._exit(0)


if __name__ == "__main__":
    main()
