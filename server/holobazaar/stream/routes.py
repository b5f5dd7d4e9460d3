"""The `/ws` stream endpoint and the protocol's JSON Schema."""

from __future__ import annotations

from fastapi import APIRouter, WebSocket

from holobazaar.stream.connection import Connection
from holobazaar.stream.protocol import protocol_json_schema

router = APIRouter()


@router.websocket("/ws")
async def stream(websocket: WebSocket) -> None:
    state = websocket.app.state
    await Connection(websocket, state.hub, state.stream_limits, state.stream_metrics,
                     auth=getattr(state, "stream_auth", None)).run()


@router.get("/api/v1/schema/protocol", tags=["stream"])
def protocol_schema() -> dict:
    return protocol_json_schema()
