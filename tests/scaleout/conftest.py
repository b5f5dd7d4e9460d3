"""One deployment (three `holobazaar serve` processes, a private PostgreSQL database and
Redis key prefix) shared by the scale-out tests: starting a node costs seconds."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from scaleout.nodes import Deployment, deployment, write_quick_show, write_sync_show


@pytest.fixture(scope="session")
def cluster(tmp_path_factory) -> Iterator[Deployment]:
    with deployment(tmp_path_factory.mktemp("scaleout"), "scaleout") as found:
        write_quick_show(found.content)
        write_sync_show(found.content)
        found.start("a", "b", "c")
        yield found
