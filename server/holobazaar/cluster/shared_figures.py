"""Figures every node reports alike: counters and last values that a duty running on one
node at a time updates (sweeps, feed failures, the last sweep's duration) and that any
node shows. `LocalFigures` keeps them in this process (one node); `RedisFigures` in one
Redis hash (`<prefix>figures:<name>`), so the lease holder of the moment and every other
node read the same numbers. A Redis error keeps the node serving with its own figures."""

from __future__ import annotations

import logging
from typing import Any, Protocol

from redis.exceptions import RedisError

log = logging.getLogger(__name__)


class Figures(Protocol):
    async def add(self, name: str, amount: float = 1) -> None: ...

    async def put(self, name: str, value: float) -> None: ...

    async def read(self) -> dict[str, float]: ...


class LocalFigures:
    def __init__(self) -> None:
        self.values: dict[str, float] = {}

    async def add(self, name: str, amount: float = 1) -> None:
        self.values[name] = self.values.get(name, 0) + amount

    async def put(self, name: str, value: float) -> None:
        self.values[name] = value

    async def read(self) -> dict[str, float]:
        return dict(self.values)


class RedisFigures:
    def __init__(self, redis: Any, key: str) -> None:
        self.redis, self.key = redis, key
        self.local = LocalFigures()  # used while Redis cannot be reached

    async def add(self, name: str, amount: float = 1) -> None:
        await self.local.add(name, amount)
        try:
            await self.redis.hincrbyfloat(self.key, name, amount)
        except (RedisError, OSError) as exc:
            log.warning("figures %s: cannot add to %s (%s)", self.key, name, exc)

    async def put(self, name: str, value: float) -> None:
        await self.local.put(name, value)
        try:
            await self.redis.hset(self.key, name, repr(float(value)))
        except (RedisError, OSError) as exc:
            log.warning("figures %s: cannot set %s (%s)", self.key, name, exc)

    async def read(self) -> dict[str, float]:
        try:
            raw = await self.redis.hgetall(self.key)
        except (RedisError, OSError) as exc:
            log.warning("figures %s: cannot read (%s); this node's own", self.key, exc)
            return await self.local.read()
        return {str(k): float(v) for k, v in raw.items()}
