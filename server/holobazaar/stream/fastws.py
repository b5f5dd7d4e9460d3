"""The WebSocket protocol `holobazaar serve` runs under uvicorn: uvicorn's own
websockets (sans-I/O) protocol, plus a raw write path for the `/ws` stream.

Routing, the handshake, reading and parsing client frames, ping/pong and the close
handshake stay uvicorn's and the `websockets` library's; every WebSocket route keeps
working as before. What this adds, as the ASGI extension `holobazaar.raw` in the
connection's scope:

* `write(data)`: frame bytes the hub built once, straight to the transport (no per-send
  framework work, no per-client encoding or compression);
* flow control: `listener.resume_writing()` when the transport drains, and
  `is_writable()` / `buffered()` for the hub's coalescing;
* permessage-deflate always negotiated with `server_no_context_takeover`, so one
  compressed frame serves every connection with the same window (`wbits`);
* `close(code, reason)` without awaiting a writable transport.

`stream/connection.py` uses it when present and falls back to ASGI sends otherwise
(another server, or uvicorn run with a different `ws=`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

from uvicorn.config import Config
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState
from websockets.extensions.permessage_deflate import (
    PerMessageDeflate,
    ServerPerMessageDeflateFactory,
)
from websockets.frames import Frame
from websockets.http11 import Request
from websockets.server import ServerProtocol

EXTENSION = "holobazaar.raw"
UVICORN_WS = "holobazaar.stream.fastws:StreamWebSocketProtocol"  # uvicorn's `ws=`
WINDOW_BITS = 12  # the server's deflate window (uvicorn's default too)
CLOSE_TIMEOUT = 10.0


class DrainListener(Protocol):
    def resume_writing(self) -> None: ...


class StreamWebSocketProtocol(WebSocketsSansIOProtocol):
    def __init__(self, config: Config, server_state: ServerState, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        extensions = []
        if self.config.ws_per_message_deflate:
            extensions = [ServerPerMessageDeflateFactory(
                server_no_context_takeover=True,
                server_max_window_bits=WINDOW_BITS,
                client_max_window_bits=WINDOW_BITS,
                compress_settings={"memLevel": 5},
            )]
        self.conn = ServerProtocol(extensions=extensions, max_size=self.config.ws_max_size,
                                   logger=logging.getLogger("uvicorn.error"))
        self.listener: DrainListener | None = None

    # ---- uvicorn hooks -------------------------------------------------------------

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        scope = self.__dict__.get("scope")
        if scope is not None:  # the app's task starts later and sees the extension
            scope["extensions"][EXTENSION] = self

    def resume_writing(self) -> None:
        super().resume_writing()
        listener = self.listener
        if listener is not None:
            listener.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self.listener = None
        super().connection_lost(exc)

    def handle_close(self, event: Frame) -> None:
        self.listener = None
        super().handle_close(event)

    # ---- the raw path --------------------------------------------------------------

    @property
    def wbits(self) -> int:
        """The shared deflate window in bits, or 0 when frames must go uncompressed."""
        for extension in self.conn.extensions:
            if isinstance(extension, PerMessageDeflate) and extension.local_no_context_takeover:
                return extension.local_max_window_bits
        return 0

    def write(self, data: bytes) -> None:
        if not self.close_sent and not self.disconnected:
            self.transport.write(data)

    def is_writable(self) -> bool:
        return self.writable.is_set() and not self.close_sent and not self.disconnected

    def buffered(self) -> int:
        return self.transport.get_write_buffer_size()

    def close(self, code: int, reason: str) -> None:
        """Start the closing handshake now (the same steps as an ASGI websocket.close)."""
        self.listener = None
        if self.close_sent or self.disconnected or self.transport.is_closing():
            return
        self.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})
        self.conn.send_close(code, reason)
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()
        self.close_timer = self.loop.call_later(CLOSE_TIMEOUT, self.transport.close)
