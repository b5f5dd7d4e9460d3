"""Shared fixtures: a real server (uvicorn on a free loopback port, in a thread of the
test process) over a private copy of the demo content and a private data folder; a migrated
throwaway PostgreSQL database; the test Redis. The helpers themselves live in support/."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from support.browser import chromium_browser
from support.databases import SqliteTemplate, postgres_engine, require_redis
from support.live import LiveServer, start_server
from support.order import Recorder, known_seconds, longest_modules_first


@pytest.fixture(scope="session")
def browser() -> Iterator:
    """The one headless Chromium of the run (support/browser.py): every browser test opens
    its own context in it."""
    with chromium_browser() as browser:
        yield browser


@pytest.fixture(scope="session", autouse=True)
def migrated_sqlite_template(tmp_path_factory) -> Iterator[None]:
    """Fresh SQLite databases start from one migrated copy (support/databases.py)."""
    from holobazaar import db

    templates = SqliteTemplate(db.upgrade, tmp_path_factory.mktemp("sqlite-template"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(db, "upgrade", templates.upgrade)
        yield


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    """A fresh server per test (about 0.3 s), on its own copy of the demo content."""
    live = start_server(tmp_path)
    yield live
    live.stop()


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory) -> Iterator[LiveServer]:
    """One server for a whole module, for tests that do not change content."""
    live = start_server(tmp_path_factory.mktemp("shared"))
    yield live
    live.stop()


@pytest.fixture
def pg_engine(request) -> Iterator[Engine]:
    """An engine on a fresh, migrated PostgreSQL database, dropped after the test (skips
    without HOLOBAZAAR_TEST_POSTGRES_URL, fails without it under CI)."""
    with postgres_engine(request.path.parent.name) as engine:
        yield engine


@pytest.fixture
def redis_url() -> str:
    """The test Redis (HOLOBAZAAR_TEST_REDIS_URL); keep to a key prefix of your own
    (support.databases.private_prefix)."""
    return require_redis()


BROWSER_FIXTURES = {"browser", "chromium", "probe", "page", "context"}


def pytest_collection_modifyitems(config, items) -> None:
    """Every test that drives Chromium is marked `browser` (by its folder, its module's
    mark, or a browser fixture), and runs last: Playwright's sync API keeps an event loop
    running in the main thread for the session-scoped browser, and the other tests call
    asyncio.run(). `make test` runs the unmarked tests on every core first, then these in
    one process of their own."""
    for item in items:
        if BROWSER_FIXTURES & set(getattr(item, "fixturenames", ())) \
                or "playwright" in _module_source(item):
            item.add_marker(pytest.mark.browser)
    longest_modules_first(items, known_seconds(config))  # support/order.py
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)


_recorder = Recorder()


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:
    """xdist's controller gives each worker the same recorded times (support/order.py)."""
    node.workerinput["test_seconds"] = _controller_seconds(node.config)


@cache
def _controller_seconds(config) -> dict[str, float]:
    return known_seconds(config)  # read once for every worker


def pytest_runtest_logreport(report) -> None:
    _recorder.add(report)


def pytest_sessionfinish(session) -> None:
    _recorder.save(session.config)


def _module_source(item) -> str:
    return _source(str(getattr(item, "fspath", "")))


@cache
def _source(name: str) -> str:
    path = Path(name)
    try:
        return path.read_text(encoding="utf-8") if path.suffix == ".py" else ""
    except OSError:
        return ""
