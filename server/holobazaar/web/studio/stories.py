"""Studio section: stories and recipes, /studio/<market>/stories.

A list with each document's status; an editor (Markdown body, recipe fields as fields) with
a preview rendered by the same code as the visitor pages (stories.markup.render_markdown);
the workflow buttons (draft -> review -> published -> archived, the stories domain's
TRANSITIONS); revisions with a diff against the current text and restore. Writes are form
POSTs with the session's CSRF token; a save carries the revision it was based on, and a
save over a newer revision is a 409 conflict, not an overwrite.
"""

from __future__ import annotations

import difflib
import secrets
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.responses import HTMLResponse, RedirectResponse, Response

from holobazaar import db
from holobazaar.scenes import schedule as timing
from holobazaar.scenes.dependencies import market_or_404
from holobazaar.stories import scheduled, service
from holobazaar.stories.jsonld import slugify
from holobazaar.stories.markup import render_markdown
from holobazaar.stories.routes import content_changed, four_eyes
from holobazaar.stories.schema import Ingredient, RecipeDoc, StoryDoc
from holobazaar.web.services import services
from holobazaar.web.studio.schedule import local
from holobazaar.web.studio.shell import (
    NO_STORE,
    StudioPage,
    _problem,
    field_errors,
    first,
    open_page,
    posted,
)

router = APIRouter(include_in_schema=False)
KINDS = ("story", "recipe")
GROWER_MOVES = ("review", "draft")  # a grower sends their story for review or takes it back
TITLE = {"name": "title"}  # a recipe's name is the form's title field
BUTTONS = {"review": "Send for review", "published": "Publish", "draft": "Back to draft",
           "archived": "Archive"}


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _diff(old: str, new: str) -> list[tuple[str, str]]:
    """(kind, line) pairs: kind is 'add', 'del' or 'same' (lines are escaped on output)."""
    rows = []
    for line in difflib.ndiff(old.splitlines(), new.splitlines()):
        tag = line[:2]
        if tag == "? ":
            continue
        rows.append(({"+ ": "add", "- ": "del"}.get(tag, "same"), line[2:]))
    return rows


def _diff_text(snapshot: dict[str, Any]) -> str:
    """A revision as the lines the diff compares: the title, a recipe's fields (one line per
    ingredient and step), then the Markdown text."""
    lines = [f"Title: {snapshot.get('title') or snapshot.get('name') or ''}"]
    if "ingredients" in snapshot:  # a recipe
        lines.append(f"Description: {snapshot.get('description') or ''}")
        lines.append("Ingredients:")
        for g in snapshot.get("ingredients") or []:
            sku = g.get("sku") if isinstance(g, dict) else None
            text = g.get("text", "") if isinstance(g, dict) else str(g)
            lines.append(f"  - {text}" + (f" | {sku}" if sku else ""))
        lines.append("Steps:")
        lines.extend(f"  {n}. {step}" for n, step in
                     enumerate(snapshot.get("instructions") or [], 1))
        for key, label in (("recipe_yield", "Yield"), ("prep_time", "Preparation time"),
                           ("cook_time", "Cooking time")):
            lines.append(f"{label}: {snapshot.get(key) or ''}")
    lines.append("Text:")
    return "\n".join(lines) + "\n" + str(snapshot.get("body", ""))


def _fields(doc: Any) -> dict[str, str]:
    data = {"title": doc.heading, "body": doc.body, "author": doc.author}
    if doc.kind == "recipe":
        data["description"] = doc.description
        data["ingredients"] = "\n".join(f"{g.text} | {g.sku}" if g.sku else g.text
                                        for g in doc.ingredients)
        data["instructions"] = "\n".join(doc.instructions)
        data["recipe_yield"] = doc.recipe_yield or ""
        data["prep_time"] = doc.prep_time or ""
        data["cook_time"] = doc.cook_time or ""
    return data


def _items(page: StudioPage) -> list[tuple[str, str]]:
    live = services(page.request).scenes.items.get(page.market, {})
    return sorted(((sku, f.name) for sku, f in live.items()), key=lambda x: x[1].lower())


def _updated_doc(current: Any, form: dict[str, list[str]]) -> Any:
    data = current.doc.model_dump(mode="json")
    data["body"] = first(form, "body")
    data["author"] = first(form, "author").strip()
    if current.kind == "story":
        data["title"] = first(form, "title").strip()
        return StoryDoc.model_validate(data)
    data["name"] = first(form, "title").strip()
    data["description"] = first(form, "description").strip()
    ingredients = []
    for line in _lines(first(form, "ingredients")):
        text, _, sku = line.partition("|")
        ingredients.append({"text": text.strip(), "sku": sku.strip() or None})
    data["ingredients"] = ingredients
    data["instructions"] = _lines(first(form, "instructions"))
    for key in ("recipe_yield", "prep_time", "cook_time"):
        data[key] = first(form, key).strip() or None
    return RecipeDoc.model_validate(data)


@router.get("/studio/{market}/stories", response_class=HTMLResponse)
async def list_page(request: Request, market: str) -> Response:
    page = await open_page(request, market, "stories")
    if not isinstance(page, StudioPage):
        return page
    engine = services(request).engine
    rows = []
    for kind in KINDS:
        _, found = await db.call(engine, service.list_documents, engine, kind,
                                 market=market, limit=500)
        rows.extend(found)
    rows = [r for r in rows if _mine(page, r)]
    rows.sort(key=lambda s: s.updated_at, reverse=True)
    return page.render("studio/stories.html", {"rows": rows, "errors": {}})


@router.post("/studio/{market}/stories", response_class=HTMLResponse)
async def create(request: Request, market: str) -> Response:
    checked = await posted(request, market, "stories")
    if isinstance(checked, Response):
        return checked
    page, form = checked
    kind, title = first(form, "kind"), first(form, "title").strip()
    errors: dict[str, str] = {}
    if kind not in KINDS:
        errors["kind"] = "Choose story or recipe."
    if not 3 <= len(title) <= 200:
        errors["title"] = "Give a title of 3 to 200 characters."
    engine = services(request).engine
    if not errors:
        slug = f"{slugify(title)[:60].strip('-') or kind}-{secrets.token_hex(2)}"
        base: dict[str, Any] = {"slug": slug, "market": market, "status": "draft",
                "author": page.principal.name}
        if not page.allows("curator"):  # a grower writes about their own farm
            base["producers"] = [page.principal.farm_of(market)]
        try:
            doc: Any = (StoryDoc(title=title, **base) if kind == "story" else
                        RecipeDoc(name=title, ingredients=[Ingredient(text="(first ingredient)")],
                                  **base))
            await db.call(engine, service.save, engine, doc, page.principal.actor)
        except (ValidationError, service.Conflict) as exc:
            errors["title"] = (field_errors(exc, aliases=TITLE).get("title")
                               or "This title cannot be used."
                               if isinstance(exc, ValidationError) else str(exc))
        else:
            return RedirectResponse(f"/studio/{market}/stories/{kind}/{slug}",
                                    status_code=303, headers=NO_STORE)
    rows = []
    for k in KINDS:
        _, found = await db.call(engine, service.list_documents, engine, k, market=market,
                                 limit=500)
        rows.extend(found)
    return page.render("studio/stories.html", {"rows": rows, "errors": errors,
                                               "title_value": title}, status=422)


async def _document(page: StudioPage, kind: str, slug: str) -> Any:
    if kind not in KINDS:
        return _problem(page.request, 404, "Not found", "No such kind of document.")
    engine = services(page.request).engine
    try:
        saved = await db.call(engine, service.get, engine, kind, slug, page.market)
    except service.NotFound:
        return _problem(page.request, 404, "Not found",
                        f"There is no {kind} {slug!r} in this market.")
    if not _mine(page, saved):
        return _problem(page.request, 403, "Not yours to open",
                        f"This {kind} is not about your farm.")
    return saved


async def _posted_document(request: Request, market: str, kind: str, slug: str,
                           roles: tuple[str, ...] | None = None
                           ) -> tuple[StudioPage, dict[str, list[str]], Any] | Response:
    """A POST about one story or recipe: the page, its CSRF-checked form and the document,
    or the response to send instead (refused, or no such document)."""
    checked = await posted(request, market, "stories", roles)
    if isinstance(checked, Response):
        return checked
    page, form = checked
    saved = await _document(page, kind, slug)
    if isinstance(saved, Response):
        return saved
    return page, form, saved


def _mine(page: StudioPage, saved: Any) -> bool:
    """Curators see every document of the market; a grower only their farm's."""
    if page.allows("curator"):
        return True
    farm = page.principal.farm_of(page.market)
    return farm is not None and farm in (saved.doc.producers or [])


def _clock(page: StudioPage) -> tuple[Any, Any]:
    """The market's timezone and the server's now (the scenes clock)."""
    scenes = services(page.request).scenes
    content = market_or_404(scenes, page.market)
    return timing.zone(content.market.market.timezone), scenes.clock.now()


async def _schedules(page: StudioPage, saved: Any, form: dict[str, str]) -> dict[str, Any]:
    """The "Schedule publish" card: shown to curators for a document in review (publish
    or unpublish) or published (unpublish); the pending schedules in local time."""
    if not page.allows("curator") or saved.status not in ("review", "published"):
        return {"schedule": None}
    tz, now = _clock(page)
    engine = services(page.request).engine
    rows = await db.call(engine, scheduled.list_for, engine, saved.kind, saved.slug, page.market)
    actions = scheduled.ACTIONS if saved.status == "review" else ("unpublish",)
    return {"schedule": {
        "timezone": str(tz), "actions": actions,
        "at": form.get("at") or (now + timedelta(hours=1)).astimezone(tz)
        .strftime("%Y-%m-%dT%H:%M"),
        "action": form.get("action") or actions[0],
        "pending": [{"id": r.id, "action": r.action, "when": local(r.at, tz),
                     "revision": r.revision, "actor": r.actor,
                     # An edit after scheduling: the reviewed revision still publishes.
                     "older": r.action == "publish" and r.revision != saved.revision}
                    for r in rows if r.state == "pending"]}}


async def _editor(page: StudioPage, saved: Any, *, fields: dict[str, str] | None = None,
                  errors: dict[str, str] | None = None, notice: str = "",
                  status: int = 200, form: dict[str, str] | None = None) -> Response:
    engine = services(page.request).engine
    revisions = await db.call(engine, service.revisions, engine, saved.kind, saved.slug,
                              page.market)
    diff_of = page.request.query_params.get("diff", "")
    diff = None
    if diff_of.isdigit():
        old = next((r for r in revisions if r.number == int(diff_of)), None)
        if old is not None:
            diff = {"number": old.number,
                    "rows": _diff(_diff_text(old.snapshot),
                                  _diff_text(saved.doc.model_dump(mode="json")))}
    shown = fields or _fields(saved.doc)
    return page.render("studio/story_edit.html", {
        **await _schedules(page, saved, form or {}),
        "saved": saved, "fields": shown, "errors": errors or {}, "notice": notice,
        "preview": render_markdown(shown.get("body", "")),
        "moves": [m for m in sorted(service.TRANSITIONS.get(saved.status, set()))
                  if page.allows("curator") or m in GROWER_MOVES], "buttons": BUTTONS,
        "revisions": list(reversed(revisions)), "diff": diff, "items": _items(page)},
        status=status)


@router.get("/studio/{market}/stories/{kind}/{slug}", response_class=HTMLResponse)
async def editor(request: Request, market: str, kind: str, slug: str) -> Response:
    page = await open_page(request, market, "stories")
    if not isinstance(page, StudioPage):
        return page
    saved = await _document(page, kind, slug)
    if isinstance(saved, Response):
        return saved
    notice = {"saved": "Saved.", "restored": "Restored as the newest revision.",
              "moved": "Status changed.", "scheduled": "Scheduled.",
              "unscheduled": "Schedule cancelled."}.get(request.query_params.get("done", ""), "")
    return await _editor(page, saved, notice=notice)


@router.post("/studio/{market}/stories/{kind}/{slug}", response_class=HTMLResponse)
async def save(request: Request, market: str, kind: str, slug: str) -> Response:
    opened = await _posted_document(request, market, kind, slug)
    if isinstance(opened, Response):
        return opened
    page, form, saved = opened
    fields = {k: first(form, k) for k in ("title", "body", "author", "description",
                                          "ingredients", "instructions", "recipe_yield",
                                          "prep_time", "cook_time")}
    if first(form, "revision") != str(saved.revision):
        return await _editor(page, saved, fields=fields, status=409, errors={
            "form": f"Someone saved this {kind} (revision {saved.revision}) after you opened "
                    "it. Your text is below and was not saved: compare with the newest "
                    "revision, reload, and apply your changes again."})
    try:
        doc = _updated_doc(saved, form)
    except ValidationError as exc:
        return await _editor(page, saved, fields=fields,
                             errors=field_errors(exc, aliases=TITLE), status=422)
    engine = services(request).engine
    try:
        await db.call(engine, service.save, engine, doc,
                      page.principal.actor, keep_status=True,
                      origin=saved.origin, moderation=saved.moderation,
                      moderation_reason=saved.moderation_reason)
    except service.Conflict as exc:
        return await _editor(page, saved, fields=fields, errors={"form": str(exc)},
                             status=409)
    if saved.status == "published":
        await content_changed(request, market)
    return RedirectResponse(f"/studio/{market}/stories/{kind}/{slug}?done=saved",
                            status_code=303, headers=NO_STORE)


@router.post("/studio/{market}/stories/{kind}/{slug}/status", response_class=HTMLResponse)
async def move(request: Request, market: str, kind: str, slug: str) -> Response:
    checked = await posted(request, market, "stories")
    if isinstance(checked, Response):
        return checked
    page, form = checked
    if not page.allows("curator") and first(form, "to") not in GROWER_MOVES:
        return _problem(request, 403, "Not yours to do",
                        "A grower sends a story for review; a curator publishes it.")
    saved = await _document(page, kind, slug)
    if isinstance(saved, Response):
        return saved
    engine = services(request).engine
    try:
        moved = await db.call(
            engine, service.transition, engine, kind, slug, market,
            first(form, "to"), page.principal.actor,
            distinct_reviewer=four_eyes(request, market))
    except service.Conflict as exc:
        return await _editor(page, saved, errors={"status": str(exc)}, status=409)
    if "published" in (saved.status, moved.status):
        await content_changed(request, market)
    return RedirectResponse(f"/studio/{market}/stories/{kind}/{slug}?done=moved",
                            status_code=303, headers=NO_STORE)


@router.post("/studio/{market}/stories/{kind}/{slug}/restore", response_class=HTMLResponse)
async def restore(request: Request, market: str, kind: str, slug: str) -> Response:
    opened = await _posted_document(request, market, kind, slug, ("curator",))
    if isinstance(opened, Response):
        return opened
    page, form, saved = opened
    number = first(form, "number")
    engine = services(request).engine
    try:
        if not number.isdigit():
            raise service.NotFound("number: give a revision number")
        restored = await db.call(engine, service.restore, engine, kind,
                                 slug, market, int(number), page.principal.actor)
    except (service.NotFound, ValidationError) as exc:
        return await _editor(page, saved, errors={"restore": str(exc)}, status=422)
    if restored.status == "published":
        await content_changed(request, market)
    return RedirectResponse(f"/studio/{market}/stories/{kind}/{slug}?done=restored",
                            status_code=303, headers=NO_STORE)


@router.post("/studio/{market}/stories/{kind}/{slug}/schedule", response_class=HTMLResponse)
async def schedule(request: Request, market: str, kind: str, slug: str) -> Response:
    """Schedule the reviewed revision to publish (or the document to unpublish) at a local
    time: the same service call as POST /api/v1/markets/{m}/stories|recipes/{slug}/schedule."""
    opened = await _posted_document(request, market, kind, slug, ("curator",))
    if isinstance(opened, Response):
        return opened
    page, form, saved = opened
    values = {"at": first(form, "at").strip()[:40], "action": first(form, "action")}
    tz, now = _clock(page)
    errors: dict[str, str] = {}
    if values["action"] not in scheduled.ACTIONS:
        errors["schedule_action"] = "Choose publish or unpublish."
    try:
        at = timing.parse_at(values["at"], tz)
    except (ValueError, OverflowError):
        errors["schedule_at"] = (f"Give a date and time ({tz}), e.g. 2026-12-24T18:00; "
                                 "a time skipped by a clock change does not exist.")
    engine = services(request).engine
    if not errors:
        try:
            await db.call(engine, scheduled.schedule, engine, kind, slug,
                          market, values["action"], at, page.principal.actor, now)
        except scheduled.PastTime:
            errors["schedule_at"] = (f"{local(at, tz)} is in the past (it is now "
                                     f"{local(now, tz)}, {tz}): choose a later time.")
        except (service.Conflict, service.NotFound) as exc:
            errors["schedule"] = str(exc)
    if errors:
        return await _editor(page, saved, errors=errors, form=values, status=422)
    return RedirectResponse(f"/studio/{market}/stories/{kind}/{slug}?done=scheduled#schedule",
                            status_code=303, headers=NO_STORE)


@router.post("/studio/{market}/stories/{kind}/{slug}/schedule/{schedule_id}/cancel",
             response_class=HTMLResponse)
async def unschedule(request: Request, market: str, kind: str, slug: str,
                     schedule_id: int) -> Response:
    opened = await _posted_document(request, market, kind, slug, ("curator",))
    if isinstance(opened, Response):
        return opened
    page, _, saved = opened
    engine = services(request).engine
    try:
        await db.call(engine, scheduled.cancel, engine, kind, slug,
                      market, schedule_id, page.principal.actor)
    except (service.Conflict, service.NotFound) as exc:
        return await _editor(page, saved, errors={"schedule": str(exc)}, status=409)
    return RedirectResponse(
        f"/studio/{market}/stories/{kind}/{slug}?done=unscheduled#schedule",
        status_code=303, headers=NO_STORE)


@router.post("/studio/{market}/stories-preview", response_class=HTMLResponse)
async def preview(request: Request, market: str) -> Response:
    """The body Markdown rendered exactly as the visitor pages render it (a fragment)."""
    checked = await posted(request, market, "stories")
    if isinstance(checked, Response):
        return checked
    _, form = checked
    return HTMLResponse(render_markdown(first(form, "body")), headers=NO_STORE)
