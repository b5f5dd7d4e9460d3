"""The pages' language: which one a request gets (the picker's cookie, else
Accept-Language, else the market's default), the gettext callables and locale-aware
formatting the templates use, the picker's route and the web client's catalogues.
docs/client.md, Languages."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, HTTPException, Request
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from starlette.responses import JSONResponse, RedirectResponse, Response

from holobazaar import i18n
from holobazaar.scenes.models import translated
from holobazaar.scenes.templates import PRICE_AT_STALL, capitalised

router = APIRouter(include_in_schema=False)
COOKIE_AGE = 365 * 24 * 3600
TEMPLATES_DIR = Path(__file__).parent / "templates"


def offered(market: Any = None) -> list[str]:
    """The languages a page can be read in: the market's content languages (its default
    first) and the UI's catalogues."""
    languages = market.languages if market is not None else []
    return i18n.merged(languages, i18n.ui_languages())


def choose(request: Request, market: Any = None) -> str:
    """The request's language among `offered(market)`, remembered on request.state."""
    available = offered(market)
    default = market.languages[0] if market is not None else i18n.SOURCE_LANGUAGE
    lang = i18n.negotiate(available, default, chosen=request.cookies.get(i18n.COOKIE),
                          accept_language=request.headers.get("accept-language"))
    request.state.lang = lang
    request.state.languages = available
    return lang


def content_language(lang: str, market: Any) -> str | None:
    """The language channel a page in `lang` follows: `lang` when the market's content is
    offered in it (and it is not the default), else None (the default channel)."""
    return lang if lang in market.languages[1:] else None


def page_context(request: Request) -> dict[str, Any]:
    """Every page's `lang`, `dir` and the picker's languages (context processor)."""
    lang = getattr(request.state, "lang", None) or choose(request)
    languages = getattr(request.state, "languages", None) or offered()
    return {"lang": lang, "dir": i18n.direction(lang),
            "languages": [{"code": code, "name": i18n.language_name(code)}
                          for code in languages]}


def _lang(context: Any) -> str:
    return context.get("lang") or i18n.SOURCE_LANGUAGE


@pass_context
def _gettext(context: Any, message: str) -> str:
    return i18n.translations(_lang(context)).gettext(message)


@pass_context
def _ngettext(context: Any, singular: str, plural: str, n: int) -> str:
    return i18n.translations(_lang(context)).ngettext(singular, plural, n)


def price_text(item: dict, lang: str) -> str:
    """A display-state item's price in `lang` (Babel), or the notice that replaces it;
    web-client/src/page.js priceText says the same with Intl.NumberFormat."""
    price = item.get("price")
    if price is not None:
        try:
            return i18n.format_money(price, item.get("currency") or None, lang)
        except ValueError:
            pass
    return capitalised(i18n.gettext(lang, item.get("notice") or PRICE_AT_STALL))


def templates() -> Jinja2Templates:
    """The pages' Jinja environment: jinja2's i18n extension (`{% trans %}`, `_()`) over the
    request's language, `lang`/`dir`/`languages` in every page."""
    found = Jinja2Templates(directory=TEMPLATES_DIR, context_processors=[page_context])
    found.env.add_extension("jinja2.ext.i18n")
    found.env.install_gettext_callables(  # type: ignore[attr-defined]
        _gettext, _ngettext, newstyle=True)
    found.env.globals.update(
        format_money=pass_context(lambda c, v, cur: i18n.format_money(v, cur, _lang(c))),
        format_number=pass_context(lambda c, v: i18n.format_number(v, _lang(c))),
        format_datetime=pass_context(
            lambda c, v, f="medium": i18n.format_datetime(v, _lang(c), f)),
        # A scene text in the page's language: `tr(zone, "name")` (its translation, else
        # as written).
        tr=pass_context(lambda c, source, field: translated(source, field, _lang(c))))
    return found


def _local(path: str | None) -> str:
    """A same-site path to go back to (never another host)."""
    if not path:
        return "/"
    parts = urlsplit(path)
    if parts.scheme or parts.netloc or not path.startswith("/") or path.startswith("//"):
        return "/"
    return path


@router.get("/lang")
def pick_language(to: str, next: str | None = None) -> Response:
    """The picker without JavaScript: remember `to` in a cookie and go back."""
    if i18n.language_problem(to) or len(to) > 12:
        raise HTTPException(422, f"unknown language {to!r}")
    response = RedirectResponse(_local(next), status_code=303)
    response.set_cookie(i18n.COOKIE, to.lower(), max_age=COOKIE_AGE, samesite="lax")
    return response


@router.get("/i18n/{lang}.json")
def client_catalogue(lang: str) -> Response:
    """The web client's messages in `lang` from the same catalogue as the pages' (Babel
    reads the .po), with the language's direction: `{lang, dir, messages}`."""
    if lang not in i18n.ui_languages() and i18n.language_problem(lang):
        raise HTTPException(404, "no such language")
    return JSONResponse({"lang": lang, "dir": i18n.direction(lang),
                         "messages": i18n.client_messages(lang)},
                        headers={"Cache-Control": "public, max-age=300"})


def client_boot(lang: str) -> dict[str, Any]:
    """What a page gives its script about the language (boot data)."""
    return {"lang": lang, "dir": i18n.direction(lang), "messages": i18n.client_messages(lang)}


__all__: Sequence[str] = ["choose", "client_boot", "content_language", "offered",
                          "page_context", "price_text", "router", "templates"]
