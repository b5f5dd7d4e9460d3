"""Languages: the UI catalogues, locale negotiation and locale-aware formatting (Babel).

Ground floor: the scenes (language variants of display states), the web pages and the
markers use it. UI strings are gettext messages in English (the source language) with a
catalogue per language in `holobazaar/locale/<lang>/LC_MESSAGES/messages.po`, read with
Babel when first needed (no compile step: a .po edit shows after a restart). The web
client gets the same catalogue as JSON (`client_messages`). docs/client.md, Languages.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from babel import Locale, UnknownLocaleError, negotiate_locale
from babel.dates import format_datetime as _format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal
from babel.support import NullTranslations, Translations
from pydantic import AfterValidator, BeforeValidator, Field

SOURCE_LANGUAGE = "en"
LOCALE_DIR = Path(__file__).parent / "locale"
# A language code as markets, channels and cookies spell it: "nl", "ar", "pt-br".
LANGUAGE_PATTERN = r"^[a-z]{2,3}(-[a-z0-9]{2,8})?$"
COOKIE = "hb_lang"


@lru_cache(maxsize=1)
def ui_languages() -> tuple[str, ...]:
    """The languages the UI is translated into (a catalogue each), the source first."""
    found = sorted(p.parent.parent.name for p in LOCALE_DIR.glob("*/LC_MESSAGES/messages.po"))
    return (SOURCE_LANGUAGE, *[lang for lang in found if lang != SOURCE_LANGUAGE])


def language_problem(code: str) -> str | None:
    """Why `code` is not a language Holobazaar can serve (None: it is)."""
    try:
        Locale.parse(code, sep="-")
    except (UnknownLocaleError, ValueError):
        return f"unknown language code {code!r} (use an ISO 639 code such as 'nl' or 'ar')"
    return None


def _known_language(code: str) -> str:
    if error := language_problem(code):
        raise ValueError(error)
    return code


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


# The one language type of every model (markets, displays, stories, recipes): a code as
# channels spell it, in lower case ("pt-BR" is kept as "pt-br"), that Babel (CLDR) knows.
Language = Annotated[str, BeforeValidator(_lower), Field(pattern=LANGUAGE_PATTERN),
                     AfterValidator(_known_language)]


@lru_cache(maxsize=64)
def locale(lang: str) -> Locale:
    try:
        return Locale.parse(lang or SOURCE_LANGUAGE, sep="-")
    except (UnknownLocaleError, ValueError):
        return Locale.parse(SOURCE_LANGUAGE)


def direction(lang: str) -> str:
    """"rtl" for Arabic, Hebrew and the other right-to-left scripts, else "ltr"."""
    return "rtl" if locale(lang).text_direction == "rtl" else "ltr"


def language_name(lang: str) -> str:
    """The language's own name for itself ("Nederlands", "العربية")."""
    name = locale(lang).get_display_name(locale(lang)) or lang
    return name[:1].upper() + name[1:]


@lru_cache(maxsize=16)
def _catalogue(lang: str):
    path = LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po"
    if not path.is_file():
        return None
    with path.open("rb") as handle:
        return read_po(handle, locale=lang.replace("-", "_"))


@lru_cache(maxsize=16)
def translations(lang: str) -> NullTranslations:
    """The gettext translations of a UI language (the source language's messages as they
    are for English or a language without a catalogue)."""
    catalogue = _catalogue(lang)
    if catalogue is None:
        return NullTranslations()
    buffer = io.BytesIO()
    write_mo(buffer, catalogue)
    buffer.seek(0)
    return Translations(fp=buffer)


def gettext(lang: str, message: str, **values: Any) -> str:
    text = translations(lang).gettext(message)
    return text % values if values else text


def ngettext(lang: str, singular: str, plural: str, n: int, **values: Any) -> str:
    text = translations(lang).ngettext(singular, plural, n)
    return text % values if values else text


@lru_cache(maxsize=16)
def client_messages(lang: str) -> dict[str, str]:
    """The catalogue's translated messages as the web client's `t()` reads them
    ({msgid: msgstr}, plural forms as a list); empty for the source language."""
    catalogue = _catalogue(lang)
    out: dict[str, Any] = {}
    if catalogue is None:
        return out
    for message in catalogue:
        if not message.id or message.fuzzy:
            continue
        key = message.id[0] if isinstance(message.id, tuple | list) else message.id
        value = message.string
        if isinstance(value, tuple | list):
            if all(value):
                out[key] = list(value)
        elif value:
            out[key] = value
    return out


def parse_accept_language(header: str | None) -> list[str]:
    """`nl-NL,nl;q=0.9,en;q=0.5` -> ["nl-NL", "nl", "en"] (by q, then order; q=0 left
    out; at most 20 entries, so a long header costs nothing)."""
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate((header or "").split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        tag = tag.strip()
        if not tag or tag == "*" or len(tag) > 35:
            continue
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q > 0:
            ranked.append((-q, index, tag))
    return [tag for _, _, tag in sorted(ranked)]


def negotiate(available: Sequence[str], default: str, *, chosen: str | None = None,
              accept_language: str | None = None) -> str:
    """The language to serve: `chosen` (the picker's cookie or ?lang=) when available,
    else the best match of Accept-Language (Babel's negotiate_locale, which also maps
    `nl-BE` to `nl`), else `default`."""
    if chosen and chosen.lower() in available:
        return chosen.lower()
    preferred = [tag.lower() for tag in parse_accept_language(accept_language)]
    found = negotiate_locale(preferred, list(available), sep="-") if preferred else None
    if found is None:  # "nl-nl" only: negotiate_locale needs the base language listed
        bases = [tag.split("-")[0] for tag in preferred]
        found = next((b for b in bases if b in available), None)
    return found or default


def merged(*groups: Iterable[str]) -> list[str]:
    """Languages in order of first mention, each once."""
    out: list[str] = []
    for group in groups:
        out.extend(lang for lang in group if lang not in out)
    return out


# ---- formatting ------------------------------------------------------------------------


def _decimal(value: Any) -> Decimal:
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"not an amount: {value!r}") from None
    if not amount.is_finite():
        raise ValueError(f"not an amount: {value!r}")
    return amount


def format_money(value: Any, currency: str | None, lang: str) -> str:
    """`2.7, "EUR", "nl"` -> `€ 2,70`; `"en"` -> `€2.70`. Latin digits in every language
    (the client's Intl.NumberFormat is asked for the same, so both agree). Never rounded:
    a price of 10.51 JPY shows as ¥10.51, not as the ¥11 the currency's usual whole
    yen would make of it (the display must show the inventory's price)."""
    amount = _decimal(value)
    if not currency:
        return format_decimal(amount, format="#,##0.00", locale=locale(lang),
                              numbering_system="latn", decimal_quantization=False)
    return format_currency(amount, currency, locale=locale(lang), numbering_system="latn",
                           decimal_quantization=False)


def format_number(value: Any, lang: str) -> str:
    return format_decimal(_decimal(value), locale=locale(lang), numbering_system="latn")


def format_datetime(value: Any, lang: str, format: str = "medium",
                    tzinfo: Any = None) -> str:
    return _format_datetime(value, format=format, tzinfo=tzinfo, locale=locale(lang))
