"""Waiting for a condition that other threads, processes or frames make true."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(predicate: Callable[[], T], timeout: float = 5.0, interval: float = 0.05) -> T:
    """Poll `predicate` until it returns something true, and return that."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval)


async def wait_for_async(predicate: Callable[[], object], timeout: float = 5.0,
                         interval: float = 0.02) -> None:
    """Poll `predicate` (a client's view changes as its frames arrive) until it holds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)


def processed(http, asset: dict, timeout: float = 90) -> dict:
    """Poll an uploaded asset (GET /api/v1/assets/{id}) until the pipeline is done with it:
    its record, `ready` or `failed`."""
    deadline = time.monotonic() + timeout
    while asset["status"] in ("queued", "processing"):
        assert time.monotonic() < deadline, "processing did not finish"
        time.sleep(0.1)
        asset = http.get(f"/api/v1/assets/{asset['id']}").json()
    return asset
