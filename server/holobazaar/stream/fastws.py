"""The WebSocket protocol `holobazaar serve` runs under uvicorn: uvicorn's own
websockets (sans-I/O) protocol, plus a raw write path for the `/ws` stream.

Parsing client frames, ping/pong and the close handshake stay uvicorn's and the
`websockets` library's; every other WebSocket route goes through the ASGI app as before.
A path the app registers in its lifespan state under `DIRECT` (`/ws`, see
stream/routes.py) is served without the ASGI app: this protocol makes the handshake and
hands each client message to the path's handler as a callback, so an idle connection
has no task and no Starlette objects. The handler (stream/connection.py) gets:

* `write(data)`: frame bytes the hub built once, straight to the transport (no per-send
  framework work, no per-client encoding or compression);
* flow control: `listener.resume_writing()` when the transport drains, and
  `is_writable()` / `buffered()` for the hub's coalescing;
* permessage-deflate always negotiated with `server_no_context_takeover`, so one
  compressed frame serves every connection with the same window (`wbits`);
* `close(code, reason)`: the closing handshake, at once.

Under another server (or uvicorn with a different `ws=`) `/ws` is the Starlette route.
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

from holobazaar import edges

# Lifespan state key: {path: handler factory}. A path listed here is served without an
# ASGI task or Starlette objects per connection (see `DirectHandler`).
DIRECT = "holobazaar.ws_direct"
UVICORN_WS = "holobazaar.stream.fastws:StreamWebSocketProtocol"  # uvicorn's `ws=`
WINDOW_BITS = 12  # the server's deflate window (uvicorn's default too)
CLOSE_TIMEOUT = 10.0
BACKLOG = 16384  # pending connections `serve` asks for (the kernel caps it at somaxconn)


class DrainListener(Protocol):
    def resume_writing(self) -> None: ...


class DirectHandler(DrainListener, Protocol):
    """Serves one connection of a direct path with callbacks, no task while idle."""

    def on_message(self, message: dict[str, Any]) -> None:
        """An ASGI-style receive event: {"type": "websocket.receive", "text"|"bytes"}."""

    def on_lost(self) -> None:
        """The connection is gone (closed by either side or dropped)."""


class _Flag:
    """What uvicorn needs of its `writable` Event on a direct connection (nobody awaits
    it there), without an Event's waiter deque per connection."""

    __slots__ = ("_set",)

    def __init__(self) -> None:
        self._set = True

    def set(self) -> None:
        self._set = True

    def clear(self) -> None:
        self._set = False

    def is_set(self) -> bool:
        return self._set


class _NoApp:
    """uvicorn tells its ASGI app about disconnects through a queue; a direct connection
    has no app reading it (the handler hears `on_lost`)."""

    __slots__ = ()

    def put_nowait(self, item: object) -> None:
        pass

    def empty(self) -> bool:
        return True


# One deflate offer for every connection: the factory only holds settings (each connection
# gets its own PerMessageDeflate from it), so it need not be built 10,000 times.
_DEFLATE_OFFER = [ServerPerMessageDeflateFactory(
    server_no_context_takeover=True,
    server_max_window_bits=WINDOW_BITS,
    client_max_window_bits=WINDOW_BITS,
    compress_settings={"memLevel": 5},
)]


class StreamWebSocketProtocol(WebSocketsSansIOProtocol):
    # uvicorn's own per-connection attributes, as slots of this subclass (a slot wins over
    # the instance dict): uvicorn sets ~35, and past 30 CPython gives up the dict's shared
    # keys for a table of its own, ~1.6 KB per connection. Any name not listed still
    # lands in the dict, so a uvicorn that adds attributes keeps working.
    __slots__ = ("app", "app_state", "asgi_version", "client", "close_sent", "close_timeout",
                 "close_timer", "config", "conn", "connections", "cork", "curr_msg_data_type",
                 "default_headers", "direct", "disconnected", "frames", "handshake_complete",
                 "handshake_initiated", "initial_response", "last_ping_rtt", "listener",
                 "logger", "loop", "pending_ping_payload", "ping_interval", "ping_sent_at",
                 "ping_timeout", "ping_timer", "pong_timer", "queue", "read_paused",
                 "request", "response", "root_path", "scheme", "scope", "server", "tasks",
                 "transport", "writable")

    def __init__(self, config: Config, server_state: ServerState, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        # uvicorn's __init__ made a ServerProtocol already; its parser generator refers
        # back to it (a cycle only the GC would free): close the generator, free it now.
        self.conn.parser.close()
        self.conn = ServerProtocol(
            extensions=_DEFLATE_OFFER if self.config.ws_per_message_deflate else [],
            max_size=self.config.ws_max_size, logger=logging.getLogger("uvicorn.error"))
        self.listener: DrainListener | None = None
        self.direct: DirectHandler | None = None
        self.cork: list[bytes] | None = None  # writes held back until the handshake leaves

    # ---- uvicorn hooks -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvicorn's HTTP protocol, which is upgrading this connection, and its httptools
        # parser point at each other; uvicorn breaks that cycle in the HTTP protocol's
        # connection_lost, which an upgraded connection never reaches, so each connection
        # left ~18 objects only the cyclic GC could free (8,000 devices connecting: 43% of
        # the CPU in GC). Break it the same way: the HTTP protocol's work is done here.
        upgrading = transport.get_protocol()
        if upgrading is not self and getattr(upgrading, "parser", None) is not None:
            upgrading.parser = None  # type: ignore[attr-defined]  # a BaseProtocol; getattr checked
        super().connection_made(transport)

    def handle_connect(self, event: Request) -> None:
        factory = self.app_state.get(DIRECT, {}).get(event.path.partition("?")[0])
        if factory is None:
            super().handle_connect(event)
            return
        # A direct path: the same handshake uvicorn makes on websocket.accept.
        self.handshake_initiated = True
        response = self.conn.accept(event)
        if response.status_code == 101:
            del response.headers["Date"]
            response.headers.update([(name.decode("latin-1").lower(), value.decode("latin-1"))
                                     for name, value in self.default_headers])
        self.conn.send_response(response)
        self.handshake_complete = True
        if response.status_code != 101:
            self.transport.write(b"".join(self.conn.data_to_send()))
            self.close_sent = True
            self.transport.close()
            return
        self.start_keepalive()
        # websockets' parser generator keeps the handshake Request as a local for the life
        # of the connection; nothing reads its headers after the handshake.
        event.headers.clear()
        # Per-connection objects only an ASGI app would use; stand-ins for uvicorn's Queue
        # and Event with just what uvicorn calls of them (hence the ignore).
        self.queue, self.writable = _NoApp(), _Flag()  # type: ignore[assignment]
        # The handshake response and what the handler writes at once (the welcome) leave
        # in one segment: one read instead of two for the device, at 10,000 connecting.
        self.cork = self.conn.data_to_send()
        try:
            self.direct = factory(self)
        except Exception as exc:  # the edge (holobazaar.edges): one line, a 1011 close
            self.close(1011, f"internal error {edges.report('websocket', exc)}")
        self.uncork()

    def uncork(self) -> None:
        cork, self.cork = self.cork, None
        if cork:
            self.transport.write(b"".join(cork))

    def send_receive_event_to_app(self) -> None:
        direct = self.direct
        if direct is None:
            super().send_receive_event_to_app()
            return
        data = self.frames[0] if len(self.frames) == 1 else b"".join(self.frames)
        self.frames = []
        if self.close_sent:
            return
        if self.curr_msg_data_type == "text":
            try:
                text = data.decode()
            except UnicodeDecodeError:
                self.conn.send_close(1007)
                self.handle_parser_exception()
                return
            message: dict[str, Any] = {"type": "websocket.receive", "text": text}
        else:
            message = {"type": "websocket.receive", "bytes": data}
        try:
            direct.on_message(message)
        except Exception as exc:  # the edge: never into uvicorn's data_received
            self.close(1011, f"internal error {edges.report('websocket', exc)}")

    def _lost(self) -> None:
        self.listener = None
        direct, self.direct = self.direct, None
        if direct is not None:
            direct.on_lost()

    def resume_writing(self) -> None:
        super().resume_writing()
        listener = self.listener
        if listener is not None:
            listener.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost()
        super().connection_lost(exc)

    def handle_close(self, event: Frame) -> None:
        self._lost()
        super().handle_close(event)

    def handle_parser_exception(self) -> None:
        self._lost()
        super().handle_parser_exception()

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
            if self.cork is None:
                self.transport.write(data)
            else:
                self.cork.append(data)

    def is_writable(self) -> bool:
        return self.writable.is_set() and not self.close_sent and not self.disconnected

    def buffered(self) -> int:
        return self.transport.get_write_buffer_size()

    def close(self, code: int, reason: str) -> None:
        """Start the closing handshake now (the same steps as an ASGI websocket.close)."""
        self.listener = None
        self.uncork()
        if self.close_sent or self.disconnected or self.transport.is_closing():
            return
        if self.direct is None:  # an ASGI app is reading: tell it
            self.queue.put_nowait({"type": "websocket.disconnect", "code": code,
                                   "reason": reason})
        self.conn.send_close(code, reason)
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()
        self.close_timer = self.loop.call_later(CLOSE_TIMEOUT, self.transport.close)
