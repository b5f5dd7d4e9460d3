"""What the nodes of a cluster share besides the channel logs: invalidation messages for
process-local caches (`notify` / `listen`) and single-writer duties (`singleton`).

With the in-process broker there is one node: notifications have nobody to reach and every
lease is held. With Redis, notifications travel over pub/sub; pub/sub drops messages while
a node is disconnected, so after a reconnect (or when Redis lost its data) every listener
is called with `None`, meaning "anything may have changed: reload"."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from redis.exceptions import LockError, RedisError

from holobazaar import edges
from holobazaar.cluster.lease import Duty, LocalLease, RedisLease, Singleton
from holobazaar.cluster.limits import LocalRateLimiter, RateLimiter, RedisRateLimiter
from holobazaar.cluster.shared_figures import Figures, LocalFigures, RedisFigures
from holobazaar.redis_connection import RedisConnection, node_name
from holobazaar.stream.broker import BrokerUnavailable

log = logging.getLogger(__name__)

Listener = Callable[[Any | None], Awaitable[None]]


class Cluster:
    def __init__(self, node: str, lease_ttl: float = 5.0, redis: Any = None,
                 prefix: str = "holobazaar:") -> None:
        self.node = node
        self.lease_ttl = lease_ttl
        self.redis = redis
        self.prefix = prefix
        self.listeners: dict[str, list[Listener]] = {}
        self.singletons: list[Singleton] = []
        self._task: asyncio.Task | None = None
        self._subscribed = asyncio.Event()
        self._running = False
        self._local_locks: dict[str, asyncio.Lock] = {}
        self._periodic: list[tuple[str, float, Callable[[], Awaitable[None]]]] = []
        self._periodic_tasks: list[asyncio.Task] = []

    @property
    def distributed(self) -> bool:
        return self.redis is not None

    @property
    def notify_channel(self) -> str:
        return f"{self.prefix}notify"

    # ---- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        if self.distributed:
            self._task = asyncio.create_task(self._listen_loop(), name="cluster-notify")
            await asyncio.wait_for(self._subscribed.wait(), 10)
        self._running = True
        for singleton in self.singletons:
            singleton.start()
        for job in self._periodic:
            self._start_periodic(*job)

    async def close(self) -> None:
        self._running = False
        for singleton in self.singletons:
            await singleton.stop()
        for task in self._periodic_tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    # ---- single writers ------------------------------------------------------------

    def singleton(self, name: str, duty: Duty) -> Singleton:
        """Run `duty` on one node at a time (started with the cluster, or now if it is
        running). The duty should loop until cancelled; if it returns it runs again."""
        key = f"{self.prefix}lease:{name}"
        lease = (RedisLease(self.redis, key, self.node, self.lease_ttl) if self.distributed
                 else LocalLease(key, self.node, self.lease_ttl))
        singleton = Singleton(lease, duty, name)
        self.singletons.append(singleton)
        if self._running:
            singleton.start()
        return singleton

    # ---- shared limits ---------------------------------------------------------------

    def rate_limiter(self, name: str, per_hour: float, burst: int) -> RateLimiter:
        """Token buckets per key that hold across the cluster (this process alone with the
        in-process broker)."""
        if self.distributed:
            return RedisRateLimiter(self.redis, self.prefix, name, per_hour, burst)
        return LocalRateLimiter(per_hour, burst)

    def figures(self, name: str) -> Figures:
        """Counters and values every node reads alike (see holobazaar.cluster.shared_figures)."""
        if self.distributed:
            return RedisFigures(self.redis, f"{self.prefix}figures:{name}")
        return LocalFigures()

    # ---- on every node -------------------------------------------------------------

    def periodic(self, name: str, interval: float, job: Callable[[], Awaitable[None]]) -> None:
        """Run `job` every `interval` seconds on this node while the cluster runs (a failing
        round is logged; the next one runs anyway)."""
        self._periodic.append((name, interval, job))
        if self._running:
            self._start_periodic(name, interval, job)

    def _start_periodic(self, name: str, interval: float,
                        job: Callable[[], Awaitable[None]]) -> None:
        async def loop() -> None:
            while True:
                try:
                    await job()
                except (RedisError, OSError, BrokerUnavailable) as exc:
                    log.warning("cluster: %s failed (%s)", name, exc)
                except Exception as exc:  # one line, traceback once per site (edges.py)
                    edges.report("job", exc, job=name)
                await asyncio.sleep(interval)

        self._periodic_tasks.append(asyncio.create_task(loop(), name=f"periodic-{name}"))

    # ---- mutual exclusion ----------------------------------------------------------

    @contextlib.asynccontextmanager
    async def lock(self, name: str, timeout: float = 5.0) -> AsyncIterator[None]:
        """A short critical section across the cluster (redis-py's Lock: SET NX PX, freed
        by its holder or by expiry after `timeout` seconds if the holder dies)."""
        if not self.distributed:
            local = self._local_locks.setdefault(name, asyncio.Lock())
            async with local:
                yield
            return
        lock = self.redis.lock(f"{self.prefix}lock:{name}", timeout=timeout,
                               blocking_timeout=timeout * 2)
        try:
            acquired = await lock.acquire()
        except LockError:
            raise
        except (RedisError, OSError) as exc:
            raise BrokerUnavailable(f"cluster lock {name!r}: Redis unreachable ({exc})") \
                from None
        if not acquired:
            raise LockError(f"cluster lock {name!r}: not free within {timeout * 2:g} s")
        try:
            yield
        finally:
            try:
                await lock.release()
            except LockError as exc:
                # It expired or Redis lost it meanwhile: the work is done, nothing to undo.
                log.warning("cluster lock %s was no longer ours at release (%s)", name, exc)

    # ---- cache invalidation --------------------------------------------------------

    def listen(self, topic: str, listener: Listener) -> None:
        self.listeners.setdefault(topic, []).append(listener)

    async def notify(self, topic: str, data: Any) -> None:
        """Tell the other nodes (not this one) that `data` changed under `topic`."""
        if not self.distributed:
            return
        message = json.dumps({"node": self.node, "topic": topic, "data": data})
        try:
            await self.redis.publish(self.notify_channel, message)
        except (RedisError, OSError) as exc:
            # Their caches reload everything when they reconnect; nothing else to do here.
            log.warning("cluster: cannot notify %s (%s)", topic, exc)

    async def reset(self) -> None:
        """Every listener reloads everything (Redis lost data or we missed messages)."""
        for listeners in list(self.listeners.values()):
            for listener in listeners:
                await self._call(listener, None)

    async def _call(self, listener: Listener, data: Any | None) -> None:
        try:
            await listener(data)
        except Exception:
            log.exception("cluster listener failed")

    async def _listen_loop(self) -> None:
        first = True
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.notify_channel)
                self._subscribed.set()
                if not first:
                    await self.reset()  # messages sent while we were away are gone
                first = False
                async for message in pubsub.listen():
                    await self._dispatch(message.get("data"))
            except (RedisError, OSError) as exc:
                log.warning("cluster: notification channel lost (%s); reconnecting", exc)
                await asyncio.sleep(0.5)
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()

    async def _dispatch(self, raw: Any) -> None:
        try:
            message = json.loads(raw)
            node, topic, data = message["node"], message["topic"], message["data"]
        except (TypeError, ValueError, KeyError):
            log.warning("cluster: ignoring a malformed notification %r", raw)
            return
        if node == self.node:
            return
        for listener in list(self.listeners.get(topic, [])):
            await self._call(listener, data)


REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def notify_from_outside(broker_url: str, prefix: str, topic: str, data: Any) -> bool:
    """Tell every node of a deployment (`Cluster.notify`'s message) from a process that is
    not one of them (the CLI). False when there is no Redis broker or it cannot be
    reached (the nodes' caches then catch up on their own, within their lifetimes)."""
    if not broker_url.startswith(REDIS_SCHEMES):
        return False
    import redis

    message = json.dumps({"node": "cli", "topic": topic, "data": data})
    try:
        client = redis.Redis.from_url(broker_url, socket_timeout=5)
        try:
            client.publish(f"{prefix}notify", message)
        finally:
            client.close()
    except (RedisError, OSError) as exc:
        log.warning("cluster: cannot notify %s (%s)", topic, exc)
        return False
    return True


def create_cluster(redis: RedisConnection | None, lease_ttl: float) -> Cluster:
    if redis is not None:
        cluster = Cluster(redis.node, lease_ttl, redis.client, redis.prefix)

        async def _reset() -> None:
            await cluster.reset()

        redis.on_reset.append(_reset)
        return cluster
    return Cluster(node_name(), lease_ttl)
