"""Single-writer duties across the cluster: a lease in Redis (SET NX PX), renewed by its
holder, taken over by another node within `ttl` seconds when the holder dies.

`Singleton(lease, duty)` runs `duty()` only while this node holds the lease: it retries
acquiring, renews every ttl/3, and cancels the duty as soon as the lease is lost or can no
longer be renewed in time (before another node could take it over). Each acquisition gets
a fencing `token` (strictly increasing per lease) that a duty can store with its writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Coroutine
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from holobazaar import edges

log = logging.getLogger(__name__)

Duty = Callable[[], Coroutine[Any, Any, None]]

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisLease:
    def __init__(self, redis: aioredis.Redis, key: str, owner: str, ttl: float) -> None:
        self.redis, self.key, self.owner, self.ttl = redis, key, owner, ttl
        self.token = 0
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)

    @property
    def ttl_ms(self) -> int:
        return max(1, int(self.ttl * 1000))

    async def acquire(self) -> bool:
        if not await self.redis.set(self.key, self.owner, nx=True, px=self.ttl_ms):
            return False
        self.token = int(await self.redis.incr(f"{self.key}:token"))
        return True

    async def renew(self) -> bool:
        return bool(await self._renew(keys=[self.key], args=[self.owner, self.ttl_ms]))

    async def release(self) -> None:
        await self._release(keys=[self.key], args=[self.owner])

    async def holder(self) -> str | None:
        return await self.redis.get(self.key)


class LocalLease:
    """One process, nothing to share: the lease is always ours."""

    def __init__(self, key: str, owner: str, ttl: float) -> None:
        self.key, self.owner, self.ttl, self.token = key, owner, ttl, 0

    async def acquire(self) -> bool:
        self.token += 1
        return True

    async def renew(self) -> bool:
        return True

    async def release(self) -> None:
        return None

    async def holder(self) -> str | None:
        return self.owner


Lease = RedisLease | LocalLease


class Singleton:
    """Runs a duty on exactly one node of the cluster at a time."""

    def __init__(self, lease: Lease, duty: Duty, name: str) -> None:
        self.lease, self.duty, self.name = lease, duty, name
        self.held = asyncio.Event()
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"singleton-{self.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        period = self.lease.ttl / 3
        while True:
            try:
                acquired = await self.lease.acquire()
            except (RedisError, OSError) as exc:
                log.warning("lease %s: cannot reach Redis (%s)", self.name, exc)
                acquired = False
            if acquired:
                log.info("lease %s: held by %s (token %s)", self.name, self.lease.owner,
                         self.lease.token)
                await self._hold(period)
            # Jitter, so nodes that lost Redis together do not all retry at once.
            await asyncio.sleep(period * random.uniform(0.5, 1.0))

    async def _hold(self, period: float) -> None:
        loop = asyncio.get_running_loop()
        renewed = loop.time()
        self.held.set()
        duty = asyncio.create_task(self.duty(), name=f"duty-{self.name}")
        try:
            while not duty.done():
                done, _ = await asyncio.wait({duty}, timeout=period)
                if done:
                    break
                try:
                    if not await self.lease.renew():
                        log.warning("lease %s: lost to another node", self.name)
                        return
                    renewed = loop.time()
                except (RedisError, OSError) as exc:
                    # Stop before the lease can expire: after that another node may run it.
                    if loop.time() - renewed > self.lease.ttl - period:
                        log.warning("lease %s: cannot renew (%s); stopping", self.name, exc)
                        return
            failure = duty.exception()
            if failure is not None:  # one line, traceback once per site (edges.py)
                edges.report("job", failure, job=self.name)
        finally:
            self.held.clear()
            if not duty.done():
                duty.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await duty
            with contextlib.suppress(RedisError, OSError):
                await self.lease.release()
