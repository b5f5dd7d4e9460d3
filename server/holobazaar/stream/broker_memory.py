"""The in-process broker: one process, history in memory."""

from __future__ import annotations

from collections import deque
from typing import Any

from holobazaar.channels import history_limit
from holobazaar.stream.broker import Deliver, Entry, Head, new_epoch, now_ms


class InProcessBroker:
    """Single-process broker: order is the event loop's order; history lives in memory and
    dies with the process (a restart starts new epochs, so clients resync by snapshot)."""

    def __init__(self, history_size: int = 1000, history_ttl: float = 600.0) -> None:
        self.history_size = history_size
        self.history_ttl_ms = history_ttl * 1000.0
        self._deliver: Deliver | None = None
        self._heads: dict[str, Head] = {}
        self._logs: dict[str, deque[Entry]] = {}

    async def start(self, deliver: Deliver) -> None:
        self._deliver = deliver

    async def close(self) -> None:
        self._deliver = None

    async def open(self, channel: str, state: dict) -> Head:
        head = self._heads.get(channel)
        if head is None:
            head = self._heads[channel] = Head(new_epoch(), 0, state)
            self._logs[channel] = deque(maxlen=history_limit(channel, self.history_size))
        return head

    async def append(self, channel: str, type: str, data: Any, state: dict,
                     base: tuple[str, int] | None = None) -> Entry:
        # One event loop, synchronous delivery: the hub's base is always the head.
        head = self._heads[channel]
        head.offset += 1
        head.state = state
        entry = Entry(channel, head.epoch, head.offset, type, data)
        log = self._logs[channel]
        log.append(entry)
        self._trim(log)
        if self._deliver is not None:
            self._deliver(entry)
        return entry

    async def history(self, channel: str, epoch: str, after: int) -> list[Entry] | None:
        head = self._heads.get(channel)
        if head is None or head.epoch != epoch or after > head.offset or after < 0:
            return None
        log = self._logs[channel]
        self._trim(log)
        if after == head.offset:
            return []
        if not log or log[0].offset > after + 1:
            return None  # the oldest entry we still have is past what the client needs
        return [e for e in log if e.offset > after]

    def _trim(self, log: deque[Entry]) -> None:
        cutoff = now_ms() - self.history_ttl_ms
        while log and log[0].time < cutoff:
            log.popleft()
