"""The `/ws` stream endpoint and the protocol's JSON Schema."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, WebSocket
from starlette.applications import Starlette

from holobazaar.stream.connection import Connection
from holobazaar.stream.fastws import DIRECT, StreamWebSocketProtocol
from holobazaar.stream.protocol import protocol_json_schema

router = APIRouter()


@router.websocket("/ws")
async def stream(websocket: WebSocket) -> None:
    """`/ws` under any ASGI server; `holobazaar serve` serves it through `direct`."""
    state = websocket.app.state
    await Connection(websocket, state.hub, state.stream_limits, state.stream_metrics,
                     auth=getattr(state, "stream_auth", None),
                     reactions=getattr(state, "reaction_sink", None)).run()


Accept = Callable[[StreamWebSocketProtocol], Connection]


def direct(app: Starlette) -> dict[str, dict[str, Accept]]:
    """Lifespan state for fastws: `/ws` served with callbacks (no ASGI task, no Starlette
    objects per connection), the same Connection and hooks as the route above."""

    def accept(raw: StreamWebSocketProtocol) -> Connection:
        state = app.state
        connection = Connection(None, state.hub, state.stream_limits, state.stream_metrics,
                                auth=getattr(state, "stream_auth", None),
                                reactions=getattr(state, "reaction_sink", None))
        connection.start_direct(raw)
        return connection

    return {DIRECT: {"/ws": accept}}


@router.get("/api/v1/schema/protocol", tags=["stream"])
def protocol_schema() -> dict:
    return protocol_json_schema()
