"""Curator-written text templates (`{{ item.price }}`, `{{ farm.name }}`).

They run in Jinja2's sandbox (no access to Python internals, no I/O). The result is plain
text, not HTML: display state is data that renderers draw (three.js) or put into the DOM
with textContent, and HTML pages escape it on output with their own autoescape. (Escaping
here would be half-done anyway: Jinja's autoescape escapes expression values but not the
template's literal text.)
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError, pass_context
from jinja2.sandbox import ImmutableSandboxedEnvironment

CURRENCY_SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£", "CHF": "CHF ", "JPY": "¥"}


def money(value: Any, currency: str = "EUR") -> str:
    try:
        amount = Decimal(str(value)).quantize(Decimal("0.01"))
    except InvalidOperation:
        raise ValueError(f"money needs an amount such as item.amount, not {value!r} "
                         "(item.price is already formatted)") from None
    symbol = CURRENCY_SYMBOLS.get(currency)
    return f"{symbol}{amount}" if symbol else f"{amount} {currency}"


STOCK_LABELS = {"in_stock": "In stock", "low": "Low stock", "sold_out": "Sold out"}


def stock_label(status: str) -> str:
    return STOCK_LABELS.get(status, status)


@lru_cache(maxsize=1)
def environment() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        autoescape=False, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True
    )
    env.filters["money"] = _money_filter
    env.filters["stock_label"] = stock_label
    return env


@pass_context
def _money_filter(context, value: Any, currency: str | None = None) -> str:
    """`{{ x | money }}` formats in the market's currency unless one is given."""
    market = context.get("market")
    return money(value, currency or getattr(market, "currency", None) or "EUR")


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


__all__ = ["TemplateError", "check_syntax", "money", "render", "stock_label"]
