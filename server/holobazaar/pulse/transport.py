"""How accepted reactions reach the one aggregator (docs/pulse.md, "Several nodes").

Every node validates, hashes and rate-limits the reactions of its own clients
(`PulseService.accept`) and hands the resulting event to its transport; exactly one
aggregator counts them. Two transports, one interface:

* `LocalTransport` (in-process broker, one node): the event goes straight to the
  aggregator in the same process.
* `RedisTransport` (Redis broker): events are batched (one stream entry per ~20 ms batch)
  into the stream `<prefix>pulse:events` (approximately MAXLEN-trimmed); the node holding
  the `pulse-aggregator` lease reads it. After each write to the database the aggregator
  stores the stream id it has written up to (`<prefix>pulse:cursor`), so a node taking over
  rebuilds from the database and reads the stream from there: nothing is counted twice or
  lost when the aggregator dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from redis.exceptions import RedisError

from holobazaar.redis_connection import RedisConnection

log = logging.getLogger(__name__)

Event = dict[str, Any]  # market, display, zone, kind, dwell, recipe, device, at (UTC seconds)
Sink = Callable[[Event], None]

BATCH_SECONDS = 0.02
STREAM_MAXLEN = 20_000  # batches (at most ~50/s per node): minutes of events to take over
MAX_BUFFERED = 100_000  # events held while Redis is unreachable; older ones are dropped
READ_COUNT = 200


class LocalTransport:
    """One node: the aggregator is in this process."""

    distributed = False

    def __init__(self) -> None:
        self.sink: Sink | None = None
        self.dropped = 0

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def send(self, event: Event) -> None:
        if self.sink is not None:
            self.sink(event)

    async def cursor(self) -> str | None:
        return None

    async def save_cursor(self, cursor: str | None) -> None:
        return None

    async def consume(self, cursor: str | None) -> AsyncIterator[tuple[str, list[Event]]]:
        """Nothing to read: events reach the sink as they are sent."""
        await asyncio.Event().wait()
        yield "", []  # pragma: no cover (never reached)


class RedisTransport:
    distributed = True

    def __init__(self, redis: Any, prefix: str) -> None:
        self.redis = redis
        self.stream = f"{prefix}pulse:events"
        self.cursor_key = f"{prefix}pulse:cursor"
        self.dropped = 0
        self._buffer: list[Event] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._sender(), name="pulse-forward")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(RedisError, OSError):
            await self._write()

    def send(self, event: Event) -> None:
        self._buffer.append(event)
        if len(self._buffer) > MAX_BUFFERED:
            excess = len(self._buffer) - MAX_BUFFERED
            del self._buffer[:excess]
            self.dropped += excess
        self._wake.set()

    async def _write(self) -> None:
        batch, self._buffer = self._buffer, []
        if not batch:
            return
        try:
            await self.redis.xadd(self.stream, {"b": json.dumps(batch, separators=(",", ":"))},
                                  maxlen=STREAM_MAXLEN, approximate=True)
        except BaseException:
            self._buffer[:0] = batch  # sent again with the next batch
            raise

    async def _sender(self) -> None:
        while True:
            await self._wake.wait()
            await asyncio.sleep(BATCH_SECONDS)  # gather a batch: one stream entry for many
            self._wake.clear()
            try:
                await self._write()
            except (RedisError, OSError) as exc:
                log.warning("pulse: cannot forward reactions to Redis (%s); retrying", exc)
                await asyncio.sleep(0.5)
                self._wake.set()

    async def cursor(self) -> str | None:
        return await self.redis.get(self.cursor_key)

    async def save_cursor(self, cursor: str | None) -> None:
        if cursor:
            await self.redis.set(self.cursor_key, cursor)

    async def consume(self, cursor: str | None) -> AsyncIterator[tuple[str, list[Event]]]:
        """Batches after `cursor` (all of the stream without one), as (stream id, events)."""
        position = cursor or "0-0"
        while True:
            try:
                response = await self.redis.xread({self.stream: position}, count=READ_COUNT,
                                                  block=1000)
            except (RedisError, OSError) as exc:
                log.warning("pulse: cannot read reactions from Redis (%s); retrying", exc)
                await asyncio.sleep(0.5)
                continue
            for _, rows in response or []:
                for id_, fields in rows:
                    position = id_
                    try:
                        events = json.loads(fields["b"])
                    except (KeyError, TypeError, ValueError):
                        log.warning("pulse: skipping a malformed batch %s", id_)
                        continue
                    yield id_, events


Transport = LocalTransport | RedisTransport


def create_transport(redis: RedisConnection | None) -> Transport:
    if redis is not None:
        return RedisTransport(redis.client, redis.prefix)
    return LocalTransport()
