"""The `/ws` stream endpoint and the protocol's JSON Schema."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from fastapi import APIRouter, WebSocket
from starlette.applications import Starlette

from holobazaar.dependencies import app_services
from holobazaar.stream.connection import ChannelAuth, Connection, ReactionSink, StreamLimits
from holobazaar.stream.fastws import DIRECT, StreamWebSocketProtocol
from holobazaar.stream.hub import Hub
from holobazaar.stream.protocol import protocol_json_schema

router = APIRouter()


class StreamServices(Protocol):
    """What the stream takes from the assembled app (web/assembly.py's Services)."""

    @property
    def hub(self) -> Hub: ...
    @property
    def stream_limits(self) -> StreamLimits: ...
    @property
    def stream_metrics(self) -> dict[str, int]: ...
    @property
    def stream_auth(self) -> ChannelAuth: ...
    @property
    def reaction_sink(self) -> ReactionSink: ...


def _connection(websocket: WebSocket | None, services: StreamServices) -> Connection:
    return Connection(websocket, services.hub, services.stream_limits,
                      services.stream_metrics, auth=services.stream_auth,
                      reactions=services.reaction_sink)


@router.websocket("/ws")
async def stream(websocket: WebSocket) -> None:
    """`/ws` under any ASGI server; `holobazaar serve` serves it through `direct`."""
    await _connection(websocket, app_services(websocket)).run()


Accept = Callable[[StreamWebSocketProtocol], Connection]


def direct(app: Starlette) -> dict[str, dict[str, Accept]]:
    """Lifespan state for fastws: `/ws` served with callbacks (no ASGI task, no Starlette
    objects per connection), the same Connection and hooks as the route above."""

    def accept(raw: StreamWebSocketProtocol) -> Connection:
        connection = _connection(None, app.state.services)
        connection.start_direct(raw)
        return connection

    return {DIRECT: {"/ws": accept}}


@router.get("/api/v1/schema/protocol", tags=["stream"])
def protocol_schema() -> dict:
    return protocol_json_schema()
