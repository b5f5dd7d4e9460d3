"""Picks the broker for a node: in-process without Redis, else over the node's connection."""

from __future__ import annotations

from holobazaar.redis_connection import RedisConnection
from holobazaar.stream.broker import Broker
from holobazaar.stream.broker_memory import InProcessBroker


def create_broker(redis: RedisConnection | None, history_size: int,
                  history_ttl: float) -> Broker:
    if redis is None:
        return InProcessBroker(history_size, history_ttl)
    from holobazaar.stream.broker_redis import RedisBroker  # late: only Redis nodes need it

    return RedisBroker(redis, history_size, history_ttl)
