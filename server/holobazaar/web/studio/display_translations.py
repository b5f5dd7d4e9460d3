"""The studio's translations of a display, side by side with the text as written:
/studio/<market>/displays/<display>/translations?lang=nl lists every translatable field of
the display (scenes/display_translations.py), its source read-only beside an input in the
chosen language, and saves a language's translations through the YAML editor's write path
(If-Match, validation, a revision, the reload that streams `market/<m>/display/<d>?lang=`).
Curators of the market, as the story translations (docs/studio.md, Displays)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from markupsafe import Markup
from starlette.responses import HTMLResponse, RedirectResponse, Response

from holobazaar import db, i18n
from holobazaar.channels import display_channel
from holobazaar.scenes import authoring
from holobazaar.scenes import display_translations as texts
from holobazaar.web.services import services
from holobazaar.web.studio.shell import NO_STORE, StudioPage, first, open_page, posted

router = APIRouter(include_in_schema=False)
ROLES = ("curator",)
# A form carries one input per text: a big display's, in Arabic (percent-encoded), is
# more than the studio's usual 64 KiB and 200 fields.
MAX_FORM_BYTES = 2 * 1024 * 1024
MAX_FORM_FIELDS = 2000
FIELD = "f:"  # the form's name of a field's input: "f:node.tagline.text"


def _languages(page: StudioPage) -> list[str]:
    content = services(page.request).scenes.market(page.market)
    return list(content.market.market.languages) if content is not None else []


async def _page(page: StudioPage, display: str, target: str, *,
                drafts: dict[str, str] | None = None, errors: dict[str, str] | None = None,
                saved: str = "", bad_language: str = "", conflict: bool = False,
                meanwhile: set[str] | None = None, status: int = 200) -> Response:
    scenes = services(page.request).scenes
    doc, etag = authoring.read_source(scenes, page.market, display)
    earlier = await db.call(scenes.engine, texts.history, scenes, page.market, display)
    languages = _languages(page)
    tabs = []
    for lang in languages[1:]:
        found = texts.fields(doc, lang, earlier)
        tabs.append({"code": lang, "name": i18n.language_name(lang),
                     "missing": sum(f.status == "missing" for f in found),
                     "changed": sum(f.status == "changed" for f in found)})
    shown = texts.fields(doc, target, earlier) if target else []
    source = languages[0] if languages else i18n.SOURCE_LANGUAGE
    return page.render("studio/display_translations.html", {
        "display": display, "title": shown_title(scenes, page.market, display),
        "tag_values": Markup('<code class="tag" dir="ltr">{{ … }}</code>'),
        "tag_logic": Markup('<code class="tag" dir="ltr">{% … %}</code>'),
        "etag": etag, "target": target, "target_name": i18n.language_name(target),
        "target_dir": i18n.direction(target), "source": source,
        "source_name": i18n.language_name(source), "source_dir": i18n.direction(source),
        "tabs": tabs, "fields": [f for f in shown if f.status != "values"],
        "values_only": [f for f in shown if f.status == "values"],
        "by_key": {f.key: f for f in shown},
        "counts": {s: sum(f.status == s for f in shown)
                   for s in ("missing", "changed", "done")},
        "drafts": drafts or {}, "errors": errors or {}, "saved": saved,
        "bad_language": bad_language,
        "conflict": conflict, "meanwhile": meanwhile or set(), "prefix": FIELD},
        status=status)


def shown_title(scenes: Any, market: str, display: str) -> str:
    """The display's title as visitors read it (composed: its template filled in)."""
    state = scenes.hub.snapshot(display_channel(market, display))[2]
    shown = state.get("display") if isinstance(state, dict) else None
    return str((shown or {}).get("title") or display)


def _unknown_display(page: StudioPage, display: str) -> Response | None:
    content = services(page.request).scenes.market(page.market)
    if content is not None and display in content.displays:
        return None
    return page.render("studio/problem.html", {
        "title": "No such display",
        "message": f"{page.market_name} has no display {display!r}."}, 404)


@router.get("/studio/{market}/displays/{display}/translations", response_class=HTMLResponse)
async def translations_page(request: Request, market: str, display: str) -> Response:
    page = await open_page(request, market, "displays", ROLES)
    if not isinstance(page, StudioPage):
        return page
    if (missing := _unknown_display(page, display)) is not None:
        return missing
    others = _languages(page)[1:]
    # An unknown ?lang= shows the first of the market's other languages.
    wanted = request.query_params.get("lang", "")
    target = wanted if wanted in others else (others[0] if others else "")
    saved = request.query_params.get("saved", "")
    # The template words the notice (in the page's language): a count, or "none".
    return await _page(page, display, target,
                       saved=saved if saved.isdigit() or saved == "none" else "")


def _meanwhile(scenes: Any, market: str, display: str, etag: str, language: str) -> set[str]:
    """The fields whose source or translation someone changed since the revision `etag`
    the page was read at (all of them when that revision is not known)."""
    doc, _ = authoring.read_source(scenes, market, display)
    now = texts.texts_of(doc, language)
    before = next((r.document for r in authoring.revisions(scenes, market, display)
                   if r.etag == etag and r.document is not None), None)
    if before is None:
        return set(now)
    then = texts.texts_of(before, language)
    return {key for key, value in now.items() if then.get(key) != value}


@router.post("/studio/{market}/displays/{display}/translations/{lang}",
             response_class=HTMLResponse)
async def save_translations(request: Request, market: str, display: str,
                            lang: str) -> Response:
    checked = await posted(request, market, "displays", ROLES, MAX_FORM_BYTES, MAX_FORM_FIELDS)
    if isinstance(checked, Response):
        return checked
    page, form = checked
    if (missing := _unknown_display(page, display)) is not None:
        return missing
    if lang not in _languages(page)[1:]:
        return await _page(page, display, "", status=404, bad_language=lang)
    values = {name[len(FIELD):]: first(form, name) for name in form if name.startswith(FIELD)}
    scenes = services(request).scenes
    etag = first(form, "etag")
    try:
        _new, changed = await texts.save(scenes, market, display, lang, values, etag,
                                         page.principal.name)
    except authoring.AuthoringError as exc:
        if exc.status == 412:
            return await _page(
                page, display, lang, drafts=values, status=409,
                meanwhile=await db.call(scenes.engine, _meanwhile, scenes, market, display,
                                        etag, lang), conflict=True)
        doc, _ = authoring.read_source(scenes, market, display)
        errors = texts.field_errors(doc, lang, exc)
        return await _page(page, display, lang, drafts=values, errors=errors,
                           status=exc.status if exc.status in (404, 422) else 409)
    done = str(len(changed)) if changed else "none"
    return RedirectResponse(
        f"/studio/{market}/displays/{display}/translations?"
        f"{urlencode({'lang': lang, 'saved': done})}#notice", status_code=303,
        headers=NO_STORE)
