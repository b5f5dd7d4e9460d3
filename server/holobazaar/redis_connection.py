"""The one Redis connection of a node (client + this deployment's key prefix), made once
from --broker-url and handed explicitly to the broker, the cluster, pulse and shows."""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import redis.asyncio as aioredis


def node_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


@dataclass
class RedisConnection:
    client: aioredis.Redis
    prefix: str = "holobazaar:"
    node: str = field(default_factory=node_name)
    # Called when Redis lost its data (the broker notices it): every user rebuilds.
    on_reset: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    @classmethod
    def from_url(cls, url: str, prefix: str = "holobazaar:",
                 node: str | None = None) -> RedisConnection:
        # Blocking stream reads hold a connection for up to a second: no socket timeout.
        client = aioredis.Redis.from_url(url, decode_responses=True,
                                         socket_connect_timeout=5, health_check_interval=30)
        return cls(client, prefix, node or node_name())

    def key(self, name: str) -> str:
        return f"{self.prefix}{name}"

    async def close(self) -> None:
        await self.client.aclose()


def connect(broker_url: str, prefix: str) -> RedisConnection | None:
    """The node's Redis connection, or None with the in-process broker (memory://)."""
    if broker_url.startswith("memory://"):
        return None
    return RedisConnection.from_url(broker_url, prefix)
