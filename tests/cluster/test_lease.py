"""Single-writer duties over a real Redis: exactly one holder at a time, takeover within
the lease time when the holder is SIGKILLed, and a holder that loses its lease stops."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis

from holobazaar.cluster import Cluster

from support.databases import private_prefix

pytestmark = pytest.mark.redis

TTL = 1.0

HOLDER = textwrap.dedent("""
    import asyncio, sys
    import redis.asyncio as aioredis
    from holobazaar.cluster import Cluster

    url, prefix, node, ttl = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])

    async def main() -> None:
        r = aioredis.Redis.from_url(url, decode_responses=True)
        cluster = Cluster(node, lease_ttl=ttl, redis=r, prefix=prefix)

        async def duty() -> None:
            token = cluster.singletons[0].lease.token
            while True:
                await r.rpush(prefix + "ticks", f"{node} {token}")
                await asyncio.sleep(0.05)

        cluster.singleton("clock", duty)
        await cluster.start()
        await asyncio.Event().wait()

    asyncio.run(main())
""")


def ticks(client: redis.Redis, prefix: str) -> list[tuple[str, int]]:
    return [(node, int(token)) for node, token in
            (raw.decode().split() for raw in client.lrange(f"{prefix}ticks", 0, -1))]


def test_one_holder_and_takeover_after_sigkill(tmp_path: Path, redis_url: str):
    script = tmp_path / "holder.py"
    script.write_text(HOLDER)
    client = redis.Redis.from_url(redis_url)
    with private_prefix(redis_url, "lease") as prefix:
        procs = {name: subprocess.Popen([sys.executable, str(script), redis_url, prefix, name,
                                         str(TTL)]) for name in ("one", "two")}
        try:
            deadline = time.monotonic() + 30
            while not ticks(client, prefix):
                assert time.monotonic() < deadline, "nobody took the lease"
                time.sleep(0.05)
            time.sleep(1.5)  # both running: the lease keeps the duty on one of them
            before = ticks(client, prefix)
            holders = {node for node, _ in before}
            assert len(holders) == 1, holders
            holder = holders.pop()
            other = "two" if holder == "one" else "one"

            procs[holder].kill()
            procs[holder].wait(10)
            killed_at = time.monotonic()
            while not any(node == other for node, _ in ticks(client, prefix)):
                assert time.monotonic() - killed_at < TTL + 3, "no takeover"
                time.sleep(0.02)
            takeover = time.monotonic() - killed_at
            assert takeover <= TTL + 1.0  # lease expiry plus at most one retry period
            after = ticks(client, prefix)[len(before):]
            # Once the new holder ticks, the old one never does again; tokens increase.
            first_new = next(i for i, (node, _) in enumerate(after) if node == other)
            assert all(node == other for node, _ in after[first_new:])
            assert after[first_new][1] > before[-1][1]
        finally:
            for proc in procs.values():
                proc.kill()
                proc.wait(10)
            client.close()


def test_a_holder_that_loses_its_lease_stops_its_duty(redis_url: str):
    async def scenario(prefix: str) -> None:
        r = aioredis.Redis.from_url(redis_url, decode_responses=True)
        cluster = Cluster("solo", lease_ttl=TTL, redis=r, prefix=prefix)
        running = asyncio.Event()
        stopped = asyncio.Event()

        async def duty() -> None:
            running.set()
            try:
                await asyncio.Event().wait()
            finally:
                stopped.set()

        singleton = cluster.singleton("sweep", duty)
        await cluster.start()
        try:
            await asyncio.wait_for(running.wait(), 5)
            assert await singleton.lease.holder() == "solo"
            # Someone else holds it now (e.g. our renewals were too late): stop at once.
            await r.set(f"{prefix}lease:sweep", "intruder", px=60_000)
            await asyncio.wait_for(stopped.wait(), TTL)
            assert not singleton.held.is_set()
            assert await r.get(f"{prefix}lease:sweep") == "intruder"  # not released by us
        finally:
            await cluster.close()
            await r.aclose()

    with private_prefix(redis_url, "lease") as prefix:
        asyncio.run(scenario(prefix))


def test_without_redis_the_only_node_holds_every_lease():
    async def scenario() -> None:
        cluster = Cluster("alone")
        ran = asyncio.Event()

        async def duty() -> None:
            ran.set()
            await asyncio.Event().wait()

        cluster.singleton("clock", duty)
        await cluster.start()
        await asyncio.wait_for(ran.wait(), 2)
        await cluster.close()

    asyncio.run(scenario())
