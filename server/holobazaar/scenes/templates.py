"""Curator-written text templates (`{{ item.price }}`, `{{ farm.name }}`).

They run in Jinja2's sandbox (no attribute access to Python internals, no I/O) with
autoescape on, so a rendered string is safe to place in HTML as it is. Renderers that draw
text (three.js) decode the five HTML entities first; see docs/protocol.md.
"""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError
from jinja2.sandbox import ImmutableSandboxedEnvironment

CURRENCY_SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£", "CHF": "CHF ", "JPY": "¥"}


def money(value: Any, currency: str = "EUR") -> str:
    amount = Decimal(str(value)).quantize(Decimal("0.01"))
    symbol = CURRENCY_SYMBOLS.get(currency)
    return f"{symbol}{amount}" if symbol else f"{amount} {currency}"


STOCK_LABELS = {"in_stock": "In stock", "low": "Low stock", "sold_out": "Sold out"}


def stock_label(status: str) -> str:
    return STOCK_LABELS.get(status, status)


@lru_cache(maxsize=1)
def environment() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        autoescape=True, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True
    )
    env.filters["money"] = money
    env.filters["stock_label"] = stock_label
    return env


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
        return str(environment().filters["escape"](text))
    return _compiled(text).render(context)


__all__ = ["TemplateError", "check_syntax", "money", "render", "stock_label"]
