"""Pulse test helpers: the demo market's channels, reaction frames from distinct devices."""

from __future__ import annotations

import secrets
import time

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


def within_one_minute(seconds_needed: float = 20.0) -> None:
    """Per-minute rows are k-anonymous each on their own: a test whose devices must land in
    one minute waits for the next minute when too little of this one is left."""
    into_minute = time.time() % 60
    if into_minute > 60 - seconds_needed:
        time.sleep(60.5 - into_minute)
