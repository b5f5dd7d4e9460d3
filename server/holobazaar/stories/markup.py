"""Markdown -> sanitized HTML, and plain text for display state.

markdown-it-py renders CommonMark (raw HTML passes through the renderer, so that harmless
inline tags like <em> keep working); nh3 (ammonia) then sanitizes the result with an
allow-list, so `<script>`, `javascript:` links, event-handler attributes and iframes
never survive. Plain text is made from the same sanitized HTML with every tag removed."""

from __future__ import annotations

import html
from functools import lru_cache

import nh3
from markdown_it import MarkdownIt

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "em", "h1", "h2", "h3", "h4", "h5", "h6",
    "hr", "i", "img", "li", "ol", "p", "pre", "s", "strong", "sub", "sup", "table", "tbody",
    "td", "th", "thead", "tr", "ul",
}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "title"},
                      "th": {"align"}, "td": {"align"}}
URL_SCHEMES = {"http", "https", "mailto"}


@lru_cache(maxsize=1)
def _markdown() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": True, "linkify": False}).enable("table")


def sanitize(fragment: str) -> str:
    return nh3.clean(fragment, tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRIBUTES,
                     url_schemes=URL_SCHEMES, link_rel="nofollow noopener ugc")


# Story views are rebuilt whenever a display recomposes (every price change): the same
# bodies, rendered and sanitized again, were ~7% of the server's main thread at 50
# changes/s. Both are pure functions of the text.
@lru_cache(maxsize=1024)
def render_markdown(text: str) -> str:
    """Sanitized HTML for a Markdown body (safe to insert into a page as is)."""
    return sanitize(_markdown().render(text))


def plain_text(text: str) -> str:
    """Text without any markup: tags (and script/style contents) removed, entities
    decoded. The result is data for textContent or escaping templates, never HTML."""
    if "<" not in text and "&" not in text:
        return text
    return html.unescape(nh3.clean(text, tags=set())).strip()


def markdown_text(text: str) -> str:
    """The words of a Markdown body as plain text (for excerpts and the search index)."""
    return plain_text(render_markdown(text)).replace("\n\n", "\n").strip()


@lru_cache(maxsize=1024)
def excerpt(text: str, limit: int = 240) -> str:
    words = " ".join(markdown_text(text).split())
    if len(words) <= limit:
        return words
    cut = words[:limit].rsplit(" ", 1)[0].rstrip(",.;:")
    return cut + "…"
