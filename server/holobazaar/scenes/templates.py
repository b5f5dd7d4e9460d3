"""Curator-written text templates (`{{ item.price }}`, `{{ farm.name }}`).

They run in Jinja2's sandbox (no access to Python internals, no I/O). The result is plain
text, not HTML: display state is data that renderers draw (three.js) or put into the DOM
with textContent, and HTML pages escape it on output with their own autoescape. (Escaping
here would be half-done anyway: Jinja's autoescape escapes expression values but not the
template's literal text.)
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError, pass_context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from holobazaar import i18n

CURRENCY_SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£", "CHF": "CHF ", "JPY": "¥"}
# What a display shows instead of a price it cannot vouch for (a held change, no price).
PRICE_AT_STALL = "price at the stall"


def money(value: Any, currency: str | None = "EUR", language: str | None = None) -> str:
    """`6.5, "EUR"` -> `€6.50`; an unknown currency code follows the amount (`6.50 SEK`).
    None, or the notice that replaced a held price, stays the notice: a template such as
    `{{ item.amount | money }}` then reads "price at the stall", never a wrong value.
    With a `language` the amount is formatted that language's way (Babel: `€ 6,50` in
    Dutch) and the notice is in that language."""
    if value is None or (isinstance(value, str) and value.strip().lower() == PRICE_AT_STALL):
        notice = value or PRICE_AT_STALL
        return i18n.gettext(language, PRICE_AT_STALL) if language else notice
    if language:
        if isinstance(value, str) and not _is_amount(value):
            return value  # a notice already in the language (a held price)
        try:
            return i18n.format_money(value, currency or None, language)
        except ValueError:
            raise ValueError(f"money needs an amount such as item.amount, not {value!r} "
                             "(item.price is already formatted)") from None
    try:
        amount = Decimal(str(value)).quantize(Decimal("0.01"))
        if not amount.is_finite():
            raise InvalidOperation
    except InvalidOperation:
        raise ValueError(f"money needs an amount such as item.amount, not {value!r} "
                         "(item.price is already formatted)") from None
    symbol = CURRENCY_SYMBOLS.get(currency or "")
    return f"{symbol}{amount}" if symbol else f"{amount} {currency or ''}".rstrip()


def _is_amount(text: str) -> bool:
    try:
        return Decimal(text).is_finite()
    except InvalidOperation:
        return False


def capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def price_label(item: Mapping[str, Any]) -> str:
    """What a visitor reads for the price of a display-state item: its money, or the notice
    that replaces it ("Price at the stall"). web-client/src/page.js mirrors this."""
    price = item.get("price")
    if price is not None:
        try:
            return money(price, item.get("currency"))
        except ValueError:
            pass
    return capitalised(item.get("notice") or PRICE_AT_STALL)


STOCK_LABELS = {"in_stock": "In stock", "low": "Low stock", "sold_out": "Sold out"}


def stock_label(status: str | None) -> str:
    return STOCK_LABELS.get(status or "", capitalised(str(status or "").replace("_", " ")))


def stock_text(item: Mapping[str, Any]) -> str:
    """A display-state item's stock line: "Low stock (3)", "Sold out" (page.js mirrors)."""
    label = stock_label(item.get("status"))
    stock = item.get("stock")
    if isinstance(stock, int) and not isinstance(stock, bool) and item.get("status") != "sold_out":
        return f"{label} ({stock})"
    return label


@lru_cache(maxsize=1)
def environment() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        autoescape=False, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
        # An absent value (`{{ item.stock }}` of an item with no count) prints nothing,
        # never "None".
        finalize=_blank_none,
    )
    env.filters["money"] = _money_filter
    env.filters["stock_label"] = stock_label
    return env


def _blank_none(value: Any) -> Any:
    return "" if value is None else value


@pass_context
def _money_filter(context, value: Any, currency: str | None = None) -> str:
    """`{{ x | money }}` formats in the market's currency unless one is given (an item's
    empty currency stays empty: the amount alone, as the stall page shows it)."""
    market = context.get("market")
    if currency is None:
        currency = getattr(market, "currency", None) or "EUR"
    # A language channel's market says its language (compositor): other than the default
    # (the first of its languages), amounts are formatted that language's way.
    language = getattr(market, "language", None)
    default = (getattr(market, "languages", None) or [language])[0]
    return money(value, currency, language if language != default else None)


def is_template(text: str) -> bool:
    return "{{" in text or "{%" in text or "{#" in text


def check_syntax(text: str) -> str | None:
    """The syntax error of a template, or None."""
    if not is_template(text):
        return None
    try:
        environment().parse(text)
    except TemplateSyntaxError as exc:
        return f"template syntax error (template line {exc.lineno}): {exc.message}"
    return None


@lru_cache(maxsize=4096)
def _compiled(text: str):
    return environment().from_string(text)


def render(text: str, context: dict[str, Any]) -> str:
    """Render a template; raises TemplateError (undefined name, sandbox violation...)."""
    if not is_template(text):
        return text
    return _compiled(text).render(context)


__all__ = ["PRICE_AT_STALL", "TemplateError", "check_syntax", "money", "price_label", "render",
           "stock_label", "stock_text"]
