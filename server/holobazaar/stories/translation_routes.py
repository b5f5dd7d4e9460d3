"""The API of a story's or recipe's translations (curators of its market): list them,
write one (as a draft or for review), move it through review to published. Thin routes
over stories/translations.py (docs/stories.md, Translations)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Request
from pydantic import BaseModel, ValidationError
from sqlalchemy.engine import Engine

from holobazaar import db
from holobazaar.accounts.models import Principal
from holobazaar.i18n import LANGUAGE_PATTERN
from holobazaar.scenes.dependencies import market_or_404
from holobazaar.scenes.service import SceneService
from holobazaar.stories import service, translations
from holobazaar.stories.dependencies import EngineDep, Scenes
from holobazaar.stories.routes import (
    StoryRoute,
    _invalid,
    content_changed,
    curator,
    four_eyes,
    read_json,
)

router = APIRouter(tags=["stories"], route_class=StoryRoute)
Lang = Annotated[str, Path(pattern=LANGUAGE_PATTERN, max_length=12)]


class StatusIn(BaseModel):
    status: translations.TranslationStatus


async def _run(fn, engine, *args, **kwargs):
    """`fn(engine, ...)` in a worker thread (db.call); a 422 for a bad translation
    (NotFound and Conflict: StoryRoute's 404 and 409)."""
    try:
        return await db.call(engine, fn, engine, *args, **kwargs)
    except (service.NotFound, service.Conflict):
        raise
    except ValidationError as exc:
        raise _invalid(exc) from None
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None


async def _document(engine: Engine, scenes: SceneService, kind: str, market: str,
                    slug: str) -> service.Saved:
    market_or_404(scenes, market)
    return await _run(service.get, engine, kind, slug, market)


def _routes(collection: str, kind: str) -> None:
    prefix = f"/api/v1/markets/{{market}}/{collection}/{{slug}}/translations"

    @router.get(prefix, summary="A story's or recipe's translations, any status (curators)")
    async def list_translations(engine: EngineDep, scenes: Scenes, market: str, slug: str,
                                principal: Principal = Depends(curator)) -> list[dict[str, Any]]:
        await _document(engine, scenes, kind, market, slug)
        found = await _run(translations.list_for, engine, kind, slug)
        return [t.as_json() for t in found]

    @router.put(prefix + "/{language}", summary="Write a translation (draft, or review with "
                "?status=review); an edit of a published one goes back to review")
    async def put_translation(request: Request, engine: EngineDep, scenes: Scenes,
                              market: str, slug: str, language: Lang,
                              status: translations.TranslationStatus = "draft",
                              principal: Principal = Depends(curator)) -> dict[str, Any]:
        await _document(engine, scenes, kind, market, slug)
        body = await read_json(request)
        saved = await _run(translations.save, engine, kind, slug, language, body,
                           principal.actor, status)
        assert saved is not None  # created or replaced (not create_only)
        await content_changed(request, market)  # a published one may have gone to review
        return saved.as_json()

    @router.post(prefix + "/{language}/status", summary="Send a translation for review, "
                 "publish it (after review) or take it back to draft")
    async def translation_status(request: Request, engine: EngineDep, scenes: Scenes,
                                 market: str, slug: str, language: Lang,
                                 principal: Principal = Depends(curator)) -> dict[str, Any]:
        await _document(engine, scenes, kind, market, slug)
        try:
            wanted = StatusIn.model_validate(await read_json(request))
        except ValidationError as exc:
            raise _invalid(exc) from None
        saved = await _run(translations.set_status, engine, kind, slug, language,
                           wanted.status, principal.actor,
                           four_eyes=four_eyes(request, market))
        await content_changed(request, market)
        return saved.as_json()


_routes("stories", "story")
_routes("recipes", "recipe")
