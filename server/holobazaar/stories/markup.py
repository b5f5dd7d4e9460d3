"""Markdown -> sanitized HTML, and plain text for display state.

markdown-it-py renders CommonMark (raw HTML passes through the renderer, so that harmless
inline tags like <em> keep working); nh3 (ammonia) then sanitizes the result with an
allow-list, so `<script>`, `javascript:` links, event-handler attributes and iframes
never survive. Plain text is made from the same sanitized HTML with every tag removed.

Bounded: the parsers' cost grows faster than the text on some shapes (measured on this
machine: 256 KiB of `![` took 10 s in markdown-it, 256 KiB of nested `<div>` 24 s in
nh3), so a body is rendered as Markdown only within these limits and flattened beyond:
over `MAX_MARKDOWN_CHARS` it is shown as escaped plain-text paragraphs; with more than
`MAX_RAW_TAGS` `<` its raw HTML is shown as text; with more than `MAX_BRACKETS` `[` its
brackets are literal (no links or images). Block nesting (quotes, lists) stops at
markdown-it's `maxNesting` (20). Within the limits the worst shapes tried (32 KiB of
`_a_ `, of `*a `, of nested brackets) render in 0.2-0.5 s on a loaded 2-core machine
(32 KiB of ordinary prose: ~0.08 s); flattened ones in milliseconds."""

from __future__ import annotations

import html
import re
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
MAX_MARKDOWN_CHARS = 32 * 1024  # the demo's longest story is ~1.2 KB
MAX_RAW_TAGS = 256
MAX_BRACKETS = 256
MAX_NESTING = 20  # markdown-it's own default for CommonMark, kept explicit
_TAG = re.compile(r"<[^<>]*>?")
_BLANK_LINES = re.compile(r"\n\s*\n")


@lru_cache(maxsize=2)
def _markdown(raw_html: bool = True) -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": raw_html, "linkify": False,
                                     "maxNesting": MAX_NESTING}).enable("table")


def flattened(text: str) -> str | None:
    """Why `text` is not rendered as full Markdown (None: it is)."""
    if len(text) > MAX_MARKDOWN_CHARS:
        return f"longer than {MAX_MARKDOWN_CHARS} characters"
    if text.count("<") > MAX_RAW_TAGS:
        return f"more than {MAX_RAW_TAGS} '<' (raw HTML shown as text)"
    if text.count("[") > MAX_BRACKETS:
        return f"more than {MAX_BRACKETS} '[' (links shown as text)"
    return None


def sanitize(fragment: str) -> str:
    return nh3.clean(fragment, tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRIBUTES,
                     url_schemes=URL_SCHEMES, link_rel="nofollow noopener ugc")


# Story views are rebuilt whenever a display recomposes (every price change): the same
# bodies, rendered and sanitized again, were ~7% of the server's main thread at 50
# changes/s. Both are pure functions of the text.
@lru_cache(maxsize=1024)
def render_markdown(text: str) -> str:
    """Sanitized HTML for a Markdown body (safe to insert into a page as is)."""
    if len(text) > MAX_MARKDOWN_CHARS:
        return "".join(f"<p>{html.escape(part.strip())}</p>"
                       for part in _BLANK_LINES.split(text) if part.strip())
    if text.count("[") > MAX_BRACKETS:
        text = text.replace("\\", "\\\\").replace("[", "\\[")
    return sanitize(_markdown(text.count("<") <= MAX_RAW_TAGS).render(text))


def plain_text(text: str) -> str:
    """Text without any markup: tags (and script/style contents) removed, entities
    decoded. The result is data for textContent or escaping templates, never HTML."""
    if "<" not in text and "&" not in text:
        return text
    if len(text) > MAX_MARKDOWN_CHARS or text.count("<") > MAX_RAW_TAGS:
        # Too much markup for the sanitizer's time (nested tags cost it quadratic time):
        # drop anything tag-like. The result is still only data, never HTML.
        return html.unescape(_TAG.sub("", text)).strip()
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
