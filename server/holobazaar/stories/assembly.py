"""Wiring the story repository into a running server (called from web/app.py)."""

from __future__ import annotations

import logging

from sqlalchemy.engine import Engine

from holobazaar import db
from holobazaar.config import Settings
from holobazaar.scenes.service import SceneService
from holobazaar.stories import files, service, translations
from holobazaar.stories.bindings import StoryBindings

log = logging.getLogger(__name__)


def provider(engine: Engine, scenes: SceneService) -> StoryBindings:
    """The `stories` binding provider, registered before the scenes are first composed
    (until `start` has loaded it, displays see no story and no recipes)."""
    bindings = StoryBindings(engine, lambda market: scenes.items.get(market, {}))
    scenes.add_provider(bindings)
    return bindings


async def start(settings: Settings, engine: Engine, scenes: SceneService,
                bindings: StoryBindings) -> None:
    """Sync producers from the scene files, import the content folder's new story files,
    load the published stories and recipes and recompose the displays with them."""
    assert scenes.content is not None
    for market in scenes.content.markets.values():
        await db.call(engine, service.sync_producers, engine, market.id, market.market.farms)
    if settings.import_stories and settings.stories_dir.is_dir():
        report = await db.call(
            engine, files.import_directory, engine, settings.stories_dir, "import:serve",
            max_bytes=settings.story_max_bytes, markets=files.market_facts(scenes.content),
            only_new=True)
        for problem in report.problems:
            log.error("story file not imported: %s", problem)
        if report.imported:
            log.info("imported %d new story/recipe file(s) from %s", len(report.imported),
                     settings.stories_dir)
        # Their translations (translations/<lang>/<slug>.md), those not in the repository yet.
        translated = await db.call(engine, translations.import_directory, engine,
                                   settings.stories_dir, "import:serve")
        for problem in translated.problems:
            log.error("translation file not imported: %s", problem)
    for market_id in scenes.content.markets:
        await bindings.reload(market_id)
    await scenes.refresh()
