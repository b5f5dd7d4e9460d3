"""The studio: every staff page of a market under /studio/<market>, in one shell
(shell.py: access, navigation, forms). Each section is its own module with its own router."""

from fastapi import APIRouter

from holobazaar.web.studio import (
    display_translations,
    displays,
    editor,
    grower,
    inventory,
    moderation,
    schedule,
    shows,
    staff,
    stories,
    story_translations,
    truth,
)

router = APIRouter(include_in_schema=False)
for section in (displays, display_translations, editor, inventory, truth, stories,
                story_translations, moderation, shows, schedule, staff, grower):
    router.include_router(section.router)
