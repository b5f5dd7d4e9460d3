"""Wiring the story repository into a running server (called from web/app.py)."""

from __future__ import annotations

import logging

from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool

from holobazaar.config import Settings
from holobazaar.scenes.service import SceneService
from holobazaar.stories import files, service
from holobazaar.stories.bindings import StoryBindings

log = logging.getLogger(__name__)


async def start(settings: Settings, engine: Engine, scenes: SceneService) -> StoryBindings:
    """Sync producers from the scene files, import the content folder's new story files,
    register the `stories` binding provider and publish the displays with it."""
    assert scenes.content is not None
    for market in scenes.content.markets.values():
        await run_in_threadpool(service.sync_producers, engine, market.id, market.market.farms)
    if settings.import_stories and settings.stories_dir.is_dir():
        report = await run_in_threadpool(
            files.import_directory, engine, settings.stories_dir, "import:serve",
            max_bytes=settings.story_max_bytes, markets=files.market_facts(scenes.content),
            only_new=True)
        for problem in report.problems:
            log.error("story file not imported: %s", problem)
        if report.imported:
            log.info("imported %d new story/recipe file(s) from %s", len(report.imported),
                     settings.stories_dir)
    bindings = StoryBindings(engine, lambda market: scenes.items.get(market, {}))
    for market_id in scenes.content.markets:
        await bindings.reload(market_id)
    scenes.providers.append(bindings)
    await scenes.refresh()
    return bindings
