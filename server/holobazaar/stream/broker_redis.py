"""The hub's broker over Redis, for several processes and machines (docs/deploy.md).

Per channel two keys: `<prefix>ch:<channel>:head`, a hash with the epoch, the last offset
and the state at that offset (what `open()` returns to a node that starts later), and
`<prefix>ch:<channel>:log`, a stream holding the bounded history. A Lua script appends
atomically: it checks the head the caller diffed against, takes the next offset and adds
the entry with the stream ID `<offset>-0`, so the stream order is the channel's order and
history is a plain XRANGE. Every node (the appending one included) receives entries from
one reader task that multiplexes all its channels in a single XREAD BLOCK; the hub sees
them through the same `deliver` callback as with the in-process broker.

Losing Redis data (restart without persistence, FLUSHDB, eviction) is detected by a marker
key that every node watches: each node then delivers a LOST entry per channel, the hub
re-opens the channel (the first node to do so starts a new epoch with its state) and
sends snapshots, and `on_reset` callbacks recompute state from the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.typing import KeyT, StreamIdT

from holobazaar.channels import history_limit
from holobazaar.redis_connection import RedisConnection
from holobazaar.stream.broker import (
    LOST,
    BrokerUnavailable,
    Conflict,
    Deliver,
    Entry,
    Head,
    new_epoch,
    now_ms,
)

log = logging.getLogger(__name__)

BLOCK_MS = 1000  # longest XREAD wait; new channels wake the reader through its own stream
READ_COUNT = 500  # entries per stream per read
WATCH_INTERVAL = 0.5  # seconds between checks of the data-loss marker
DELIVERY_TIMEOUT = 5.0  # longest append() waits for its own entry to come back
RETRY_DELAYS = (0.05, 0.1, 0.2, 0.5, 1.0)

_APPEND = """
local head = redis.call('HMGET', KEYS[1], 'epoch', 'offset')
if not head[1] then return {'lost'} end
if ARGV[2] ~= '' and (head[1] ~= ARGV[1] or head[2] ~= ARGV[2]) then
  return {'conflict', head[1], head[2]}
end
local offset = tonumber(head[2]) + 1
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[7], offset .. '-0',
           'epoch', head[1], 'type', ARGV[3], 'data', ARGV[4], 'time', ARGV[6])
if ARGV[5] ~= '' then
  redis.call('HSET', KEYS[1], 'offset', offset, 'state', ARGV[5])
else
  redis.call('HSET', KEYS[1], 'offset', offset)
end
return {'ok', head[1], tostring(offset)}
"""

_OPEN = """
local head = redis.call('HMGET', KEYS[1], 'epoch', 'offset', 'state')
if head[1] then return head end
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[1], 'epoch', ARGV[1], 'offset', 0, 'state', ARGV[2])
return {ARGV[1], '0', ARGV[2]}
"""


def channel_log_key(redis: RedisConnection, channel: str) -> str:
    """The stream holding a channel's history (shows read cues already sent from it)."""
    return redis.key(f"ch:{channel}:log")


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class RedisBroker:
    def __init__(self, redis: RedisConnection, history_size: int = 1000,
                 history_ttl: float = 600.0) -> None:
        self.prefix = redis.prefix
        self.node = redis.node
        self.history_size = history_size
        self.history_ttl_ms = history_ttl * 1000.0
        self.redis = redis.client  # owned by the node's assembly, which closes it
        self.on_reset = redis.on_reset
        self._append = self.redis.register_script(_APPEND)
        self._open = self.redis.register_script(_OPEN)
        self._deliver: Deliver | None = None
        # channel -> (epoch, offset) last delivered here, and the offset to read after.
        self._delivered: dict[str, tuple[str, int]] = {}
        self._positions: dict[str, int] = {}
        self._generation: dict[str, int] = {}
        self._waiters: dict[str, list[tuple[str, int, asyncio.Future[None]]]] = {}
        self._wake_key = f"{self.prefix}node:{self.node}:wake"
        self._wake_pos = "0-0"
        self._marker: str | None = None
        self._tasks: list[asyncio.Task] = []
        self._closed = False
        self.healthy = True  # the last read from Redis worked (GET /healthz reports it)

    # ---- keys ----------------------------------------------------------------------

    def head_key(self, channel: str) -> str:
        return f"{self.prefix}ch:{channel}:head"

    def log_key(self, channel: str) -> str:
        return f"{self.prefix}ch:{channel}:log"

    @property
    def marker_key(self) -> str:
        return f"{self.prefix}alive"

    # ---- lifecycle -----------------------------------------------------------------

    async def start(self, deliver: Deliver) -> None:
        self._deliver = deliver
        try:
            await self.redis.ping()
        except (RedisError, OSError) as exc:
            kwargs = self.redis.connection_pool.connection_kwargs
            where = kwargs.get("path") or f"{kwargs.get('host')}:{kwargs.get('port')}"
            raise RuntimeError(f"broker: cannot reach Redis at {where} (--broker-url): "
                               f"{exc}") from None
        self._marker = await self._ensure_marker()
        self._tasks = [asyncio.create_task(self._read_loop(), name="redis-broker-reader"),
                       asyncio.create_task(self._watch_loop(), name="redis-broker-watch")]

    async def close(self) -> None:
        self._closed = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        with contextlib.suppress(RedisError, OSError):
            await self.redis.delete(self._wake_key)
        self._deliver = None
        for waiters in self._waiters.values():
            for _, _, future in waiters:
                if not future.done():
                    future.cancel()
        self._waiters.clear()

    # ---- Broker --------------------------------------------------------------------

    async def open(self, channel: str, state: dict) -> Head:
        epoch, offset, raw = await self._open(
            keys=[self.head_key(channel), self.log_key(channel)],
            args=[new_epoch(), _dumps(state)])
        head = Head(epoch, int(offset), json.loads(raw))
        # Read on from this head: what came before is in its state.
        self._positions[channel] = head.offset
        self._generation[channel] = self._generation.get(channel, 0) + 1
        self._delivered[channel] = (head.epoch, head.offset)
        await self._wake()
        return head

    async def append(self, channel: str, type: str, data: Any, state: dict,
                     base: tuple[str, int] | None = None) -> Entry:
        stamp = now_ms()
        try:
            result = await self._append(
                keys=[self.head_key(channel), self.log_key(channel)],
                args=[base[0] if base else "", str(base[1]) if base else "", type,
                      _dumps(data), _dumps(state) if type == "patch" else "", repr(stamp),
                      history_limit(channel, self.history_size)])
        except (RedisError, OSError) as exc:
            raise BrokerUnavailable(f"channel {channel}: Redis unreachable ({exc})") from None
        if result[0] == "lost":
            raise Conflict(None)
        if result[0] == "conflict":
            raise Conflict(Head(result[1], int(result[2]), {}))
        entry = Entry(channel, result[1], int(result[2]), type, data, stamp)
        await self._delivered_here(entry)
        return entry

    async def history(self, channel: str, epoch: str, after: int) -> list[Entry] | None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hmget(self.head_key(channel), ["epoch", "offset"])
            pipe.xrange(self.log_key(channel), min=f"{after + 1}-0", max="+",
                        count=self.history_size + 1)
            (head_epoch, head_offset), rows = await pipe.execute()
        if head_epoch != epoch or head_offset is None or not 0 <= after <= int(head_offset):
            return None
        if after == int(head_offset):
            return []
        entries = [self._entry(channel, id_, fields) for id_, fields in rows]
        if not entries or entries[0].offset != after + 1:
            return None
        if entries[0].time < now_ms() - self.history_ttl_ms:
            return None  # the oldest entry the client needs has expired
        return entries

    # ---- delivery ------------------------------------------------------------------

    async def _delivered_here(self, entry: Entry) -> None:
        """Wait until the reader has delivered `entry` on this node, so the hub's state
        includes it before the publisher diffs again."""
        done = self._delivered.get(entry.channel)
        if done is not None and done[0] == entry.epoch and done[1] >= entry.offset:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(entry.channel, []).append((entry.epoch, entry.offset, future))
        try:
            await asyncio.wait_for(asyncio.shield(future), DELIVERY_TIMEOUT)
        except TimeoutError:
            log.warning("channel %s: entry %s/%s not delivered back within %.0f s",
                        entry.channel, entry.epoch, entry.offset, DELIVERY_TIMEOUT)
        finally:
            waiters = self._waiters.get(entry.channel, [])
            self._waiters[entry.channel] = [w for w in waiters if w[2] is not future]

    def _resolve(self, channel: str, epoch: str, offset: int) -> None:
        for w_epoch, w_offset, future in self._waiters.get(channel, []):
            if not future.done() and (w_epoch != epoch or w_offset <= offset):
                future.set_result(None)  # delivered, or its epoch is gone for good

    def _entry(self, channel: str, id_: str, fields: dict[str, str]) -> Entry:
        return Entry(channel, fields["epoch"], int(id_.split("-", 1)[0]), fields["type"],
                     json.loads(fields["data"]), float(fields["time"]))

    async def _wake(self) -> None:
        """Make the reader re-issue its XREAD now, with the channels just opened."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.xadd(self._wake_key, {"w": "1"}, maxlen=10, approximate=False)
            pipe.expire(self._wake_key, 3600)
            await pipe.execute()

    async def _read_loop(self) -> None:
        failures = 0
        while not self._closed:
            generations = dict(self._generation)
            streams: dict[KeyT, StreamIdT] = {
                self.log_key(c): f"{p}-0" for c, p in self._positions.items()}
            streams[self._wake_key] = self._wake_pos
            try:
                response = await self.redis.xread(streams, count=READ_COUNT, block=BLOCK_MS)
                failures, self.healthy = 0, True
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                self.healthy = False
                delay = RETRY_DELAYS[min(failures, len(RETRY_DELAYS) - 1)]
                failures += 1
                log.warning("redis broker: read failed (%s); retrying in %.2f s", exc, delay)
                await asyncio.sleep(delay)
                continue
            for key, rows in response or []:
                if key == self._wake_key:
                    self._wake_pos = rows[-1][0]
                    continue
                channel = key[len(self.prefix) + 3:-4]  # "<prefix>ch:" ... ":log"
                for id_, fields in rows:
                    self._deliver_one(channel, self._entry(channel, id_, fields),
                                      generations.get(channel))

    def _deliver_one(self, channel: str, entry: Entry, generation: int | None) -> None:
        if generation == self._generation.get(channel):
            # Not re-opened meanwhile: this read's positions are still the ones to keep.
            self._positions[channel] = entry.offset
            self._delivered[channel] = (entry.epoch, entry.offset)
        if self._deliver is not None:
            try:
                self._deliver(entry)
            except Exception:  # one bad entry must not stop delivery for every channel
                log.exception("delivering %s/%s/%s failed", channel, entry.epoch, entry.offset)
        self._resolve(channel, entry.epoch, entry.offset)

    # ---- data loss -----------------------------------------------------------------

    async def _ensure_marker(self) -> str:
        await self.redis.set(self.marker_key, new_epoch(), nx=True)
        return await self.redis.get(self.marker_key) or ""

    async def _watch_loop(self) -> None:
        while not self._closed:
            await asyncio.sleep(WATCH_INTERVAL)
            try:
                marker = await self.redis.get(self.marker_key)
                if marker is None or marker != self._marker:
                    self._marker = await self._ensure_marker()
                    await self._lost()
            except (RedisError, OSError) as exc:
                log.warning("redis broker: cannot check the data-loss marker (%s)", exc)

    async def _lost(self) -> None:
        log.warning("redis broker: Redis lost the channel logs; channels restart with new "
                    "epochs and clients resync by snapshot")
        for channel in list(self._positions):
            self._resolve(channel, "", 0)
            if self._deliver is not None:
                self._deliver(Entry(channel, "", -1, LOST, None))
        for callback in list(self.on_reset):
            try:
                await callback()
            except Exception:
                log.exception("reset callback failed")
