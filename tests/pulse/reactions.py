"""Pulse test helpers: reaction frames from distinct devices, clients joined to channels."""

from __future__ import annotations

import asyncio
import secrets
import time

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


def within_one_minute(seconds_needed: float = 20.0) -> None:
    """Per-minute rows are k-anonymous each on their own: a test whose devices must land in
    one minute waits for the next minute when too little of this one is left."""
    into_minute = time.time() % 60
    if into_minute > 60 - seconds_needed:
        time.sleep(60.5 - into_minute)


async def wait_for(predicate, timeout: float = 5.0) -> None:
    """Poll `predicate` (a client's view changes as its frames arrive) until it holds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)
