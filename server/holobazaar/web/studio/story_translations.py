"""The studio's translations of a story or recipe, side by side with the original: one
card per language of the market (its other languages), each with the original's text on
one side and the translation's fields on the other, saved as a draft, sent for review and
published on their own (stories/translations.py; docs/studio.md, Stories and recipes)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.responses import HTMLResponse, RedirectResponse, Response

from holobazaar import db, i18n
from holobazaar.stories import service, translations
from holobazaar.stories.routes import content_changed, four_eyes
from holobazaar.web.services import services
from holobazaar.web.studio.shell import NO_STORE, StudioPage, field_errors, first, open_page
from holobazaar.web.studio.stories import _document, _posted_document

router = APIRouter(include_in_schema=False)
# The fields each kind translates, with their labels (the body is Markdown).
FIELDS = {"story": (("title", "Title"), ("summary", "Summary"), ("body", "Text (Markdown)")),
          "recipe": (("name", "Name"), ("description", "Description"),
                     ("instructions", "Method (one step per line)"),
                     ("body", "Notes (Markdown)"))}
ACTIONS: dict[str, translations.TranslationStatus] = {"save": "draft", "review": "review"}


def _original(doc: Any, kind: str) -> dict[str, str]:
    out = {}
    for name, _ in FIELDS[kind]:
        value = getattr(doc, name, "")
        out[name] = "\n".join(value) if isinstance(value, list) else str(value or "")
    return out


def _languages(page: StudioPage, doc: Any) -> list[str]:
    content = services(page.request).scenes.market(page.market)
    offered = content.market.market.languages if content is not None else []
    return [lang for lang in offered if lang != doc.language]


async def _page(page: StudioPage, saved: Any, *, drafts: dict[str, dict[str, str]] | None = None,
                errors: dict[str, dict[str, str]] | None = None, notice: str = "",
                status: int = 200) -> Response:
    engine = services(page.request).engine
    found = await db.call(engine, translations.list_for, engine, saved.kind, saved.slug)
    by_language = {t.language: t for t in found}
    cards = []
    for lang in _languages(page, saved.doc):
        have = by_language.get(lang)
        text = (drafts or {}).get(lang) or {
            name: "\n".join(v) if isinstance(v := (have.fields.get(name) if have else ""), list)
            else str(v or "") for name, _ in FIELDS[saved.kind]}
        cards.append({"lang": lang, "name": i18n.language_name(lang),
                      "dir": i18n.direction(lang), "status": have.status if have else None,
                      "revision": have.revision if have else 0,
                      "updated_by": have.updated_by if have else None,
                      # "text", not "values": Jinja reads card.values as dict.values
                      "text": text, "errors": (errors or {}).get(lang, {})})
    return page.render("studio/story_translations.html", {
        "saved": saved, "original": _original(saved.doc, saved.kind),
        "source_dir": i18n.direction(saved.doc.language),
        "source_name": i18n.language_name(saved.doc.language),
        "fields": FIELDS[saved.kind], "cards": cards, "notice": notice,
        "can_review": page.allows("curator")}, status=status)


@router.get("/studio/{market}/stories/{kind}/{slug}/translations", response_class=HTMLResponse)
async def translations_page(request: Request, market: str, kind: str, slug: str) -> Response:
    page = await open_page(request, market, "stories", ("curator",))
    if not isinstance(page, StudioPage):
        return page
    saved = await _document(page, kind, slug)
    if isinstance(saved, Response):
        return saved
    notice = {"draft": "Saved as a draft.", "review": "Sent for review.",
              "published": "Published: visitors reading in this language see it."}.get(
        request.query_params.get("done", ""), "")
    return await _page(page, saved, notice=notice)


@router.post("/studio/{market}/stories/{kind}/{slug}/translations/{lang}",
             response_class=HTMLResponse)
async def save_translation(request: Request, market: str, kind: str, slug: str,
                           lang: str) -> Response:
    opened = await _posted_document(request, market, kind, slug, ("curator",))
    if isinstance(opened, Response):
        return opened
    page, form, saved = opened
    if lang not in _languages(page, saved.doc):
        return await _page(page, saved, status=404,
                           notice=f"{lang!r} is not one of this market's other languages.")
    engine = services(request).engine
    action = first(form, "action", "save")
    values = {name: first(form, name) for name, _ in FIELDS[kind]}
    try:
        if action == "publish":
            await db.call(engine, translations.set_status, engine, kind, slug, lang,
                          "published", page.principal.actor,
                          four_eyes=four_eyes(request, market))
            done = "published"
        else:
            data: dict[str, Any] = {k: v.strip() for k, v in values.items() if v.strip()}
            if "instructions" in data:
                data["instructions"] = [s.strip() for s in data["instructions"].splitlines()
                                        if s.strip()]
            await db.call(engine, translations.save, engine, kind, slug, lang, data,
                          page.principal.actor, ACTIONS.get(action, "draft"))
            done = ACTIONS.get(action, "draft")
    except ValidationError as exc:
        return await _page(page, saved, drafts={lang: values},
                           errors={lang: field_errors(exc)}, status=422)
    except service.NotFound:
        return await _page(page, saved, drafts={lang: values}, status=409, errors={lang: {
            "form": "There is no translation in this language yet: save it and send it "
                    "for review first."}})
    except ValueError as exc:  # translations.NotAllowed too (a Conflict, a ValueError)
        return await _page(page, saved, drafts={lang: values},
                           errors={lang: {"form": str(exc)}}, status=409)
    await content_changed(request, market)
    return RedirectResponse(f"/studio/{market}/stories/{kind}/{slug}/translations?done={done}"
                            f"#lang-{lang}", status_code=303, headers=NO_STORE)
