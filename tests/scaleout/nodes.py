"""Scale-out test support: several `holobazaar serve` processes (support/processes.py)
sharing a private PostgreSQL database and Redis key prefix (support/databases.py), and the
quick shows they run."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from support.content import copy_content
from support.databases import private_database, private_prefix, require_postgres, require_redis
from support.demo import DEMO_CHANNEL, DEMO_DISPLAY, DEMO_MARKET, DEMO_SKU, item_path
from support.processes import ServeProcess, api_token, start_serve
from support.streamclient import StreamClient, joined

MARKET, DISPLAY, SKU, CHANNEL = DEMO_MARKET, DEMO_DISPLAY, DEMO_SKU, DEMO_CHANNEL
ITEM_PATH = item_path(SKU)
QUICK_SHOW, QUICK_ZONE, QUICK_CUES = "quick-relay", "orchard-row", 16
SYNC_SHOW, SYNC_ZONE = "sync-check", "fungi-grotto"


@dataclass
class Deployment:
    """Several `holobazaar serve` processes sharing one database and one Redis prefix."""

    tmp: Path
    database_url: str
    redis_url: str
    prefix: str
    content: Path
    nodes: list[ServeProcess] = field(default_factory=list)
    _token: str | None = None

    def start(self, *names: str, extra: tuple[str, ...] = (),
              wait: bool = True) -> list[ServeProcess]:
        started = [start_serve(self.tmp, "--broker-url", self.redis_url, "--redis-prefix",
                               self.prefix, "--log-level", "warning", *extra, name=name,
                               content=self.content, data_dir=self.tmp / name,
                               database_url=self.database_url,
                               env={"HOLOBAZAAR_LEASE_TTL": "1.5"}, wait=False)
                   for name in names]
        self.nodes.extend(started)
        if wait:
            for node in started:
                node.wait_ready(120)
        return started

    @property
    def write_headers(self) -> dict[str, str]:
        """An admin API token, made once in the shared database (any node accepts it)."""
        if self._token is None:
            self._token = api_token(self.database_url, "scale-out tests", ["admin"])
        return {"Authorization": f"Bearer {self._token}"}

    def stop_all(self) -> None:
        for node in self.nodes:
            node.stop()


@contextlib.contextmanager
def deployment(tmp: Path, label: str) -> Iterator[Deployment]:
    postgres_url, redis_url = require_postgres(), require_redis()
    content = copy_content(tmp / "content")
    with private_database(postgres_url, label, migrate=True) as database_url, \
            private_prefix(redis_url, label) as prefix:
        found = Deployment(tmp, database_url, redis_url, prefix, content)
        try:
            yield found
        finally:
            found.stop_all()


def write_quick_show(content: Path) -> None:
    """A show whose cues follow each other every 0.4 s (the demo show's are tens of
    seconds apart): one GO runs all of them, long enough to kill the clock's node."""
    cues = []
    for n in range(1, QUICK_CUES + 1):
        cues.append(f"""    - number: "{n}"
      name: Step {n}
      duration: 0.2
      post_wait: 0.4
      continue: {"auto-continue" if n < QUICK_CUES else "none"}
      actions:
        - {{kind: overlay, title: "Step {n}", text: "Relay step {n}."}}
""")
    (content / "scenes" / MARKET / "shows" / f"{QUICK_SHOW}.yaml").write_text(
        f"""version: 1
show:
  id: {QUICK_SHOW}
  title: Quick relay
  zone: {QUICK_ZONE}
  cues:
{"".join(cues)}""")


def write_sync_show(content: Path) -> None:
    """A one-cue show in its own zone: the cue stays the last one, so its sync spread can
    be read from any node after clients of every node reported it."""
    (content / "scenes" / MARKET / "shows" / f"{SYNC_SHOW}.yaml").write_text(
        f"""version: 1
show:
  id: {SYNC_SHOW}
  title: Sync check
  zone: {SYNC_ZONE}
  cues:
    - number: "1"
      name: Together
      duration: 1
      actions:
        - {{kind: overlay, title: "Together", text: "All at once."}}
""")


async def subscribed(nodes: list[ServeProcess], channel: str) -> list[StreamClient]:
    """A stream client per node (repeat a node for several), each joined to `channel` and
    holding its snapshot."""
    return [await joined(node.ws_url, channel) for node in nodes]
