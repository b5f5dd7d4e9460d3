"""Pulse test helpers: real server, real WebSocket clients, distinct device ids."""

from __future__ import annotations

import secrets

from streamclient import StreamClient

MARKET = "greenhaven"
DISPLAY_A = "zonneveld-greens"  # orchard-row
DISPLAY_B = "korenbloem-bakery"
PULSE = f"market/{MARKET}/pulse"


def display_channel(display: str) -> str:
    return f"market/{MARKET}/display/{display}"


def device_id() -> str:
    return secrets.token_urlsafe(16)


def reaction(display: str, kind: str = "love", device: str | None = None, **extra) -> dict:
    return {"type": "reaction", "market": MARKET, "display": display, "kind": kind,
            "device": device or device_id(), **extra}


async def joined(url: str, *channels: str) -> StreamClient:
    client = StreamClient(url)
    await client.connect()
    await client.hello(*channels)
    for _ in channels:
        await client.next("snapshot")
    return client
