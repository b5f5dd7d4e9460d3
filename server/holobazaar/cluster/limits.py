"""Rate limits that hold across the cluster: one token bucket per key (a client address),
`per_hour` tokens an hour, at most `burst` at once.

`LocalRateLimiter` keeps the buckets in this process (the in-process broker: one node).
`RedisRateLimiter` keeps them in Redis, refilled and taken in one Lua script with Redis'
own clock, so N nodes enforce one limit, not N times it. A bucket's key expires once it
would be full again (a full bucket holds no information). When Redis cannot be reached the
node falls back to its own buckets rather than refusing every visitor or letting all in.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import Any, Protocol

from redis.exceptions import RedisError

log = logging.getLogger(__name__)


class RateLimiter(Protocol):
    async def take(self, key: str) -> float:
        """0 when allowed (a token is taken), else the seconds to wait."""
        ...


class LocalRateLimiter:
    """Token buckets in this process."""

    def __init__(self, per_hour: float, burst: int, max_keys: int = 10_000) -> None:
        self.rate = per_hour / 3600.0
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    async def take(self, key: str) -> float:
        return self.take_at(key, time.monotonic())

    def take_at(self, key: str, now: float) -> float:
        with self._lock:
            tokens, last = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens < 1:
                self._buckets[key] = (tokens, now)
                return (1 - tokens) / self.rate if self.rate else float("inf")
            if len(self._buckets) >= self.max_keys and key not in self._buckets:
                # Forget full buckets first: they hold no information.
                self._buckets = {k: v for k, v in self._buckets.items() if v[0] < self.burst}
            self._buckets[key] = (tokens - 1, now)
            return 0.0


# KEYS[1]: the bucket (hash: tokens, stamp); ARGV: tokens per second, burst.
# Returns the seconds to wait as a string (Lua numbers become integers in replies).
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local held = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
local tokens = tonumber(held[1]) or burst
local stamp = tonumber(held[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - stamp) * rate)
local wait = 0
if tokens < 1 then
  wait = (1 - tokens) / rate
else
  tokens = tokens - 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'stamp', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return tostring(wait)
"""


class RedisRateLimiter:
    """Token buckets in Redis, shared by every node (`<prefix>limit:<name>:<key>`)."""

    def __init__(self, redis: Any, prefix: str, name: str, per_hour: float,
                 burst: int) -> None:
        self.redis, self.name = redis, name
        self.key_prefix = f"{prefix}limit:{name}:"
        self.rate, self.burst = per_hour / 3600.0, burst
        self.fallback = LocalRateLimiter(per_hour, burst)
        self._take = redis.register_script(_TAKE)

    async def take(self, key: str) -> float:
        try:
            raw = await self._take(keys=[self.key_prefix + key], args=[self.rate, self.burst])
        except (RedisError, OSError) as exc:
            log.warning("rate limit %s: Redis unreachable (%s); limiting on this node only",
                        self.name, exc)
            return await self.fallback.take(key)
        wait = float(raw)
        return wait if math.isfinite(wait) else float("inf")
