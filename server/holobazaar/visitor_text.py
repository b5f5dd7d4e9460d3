"""Text rules for everything visitors write that a curator moderates: community
story/recipe submissions (stories) and pulse notes. One definition on the ground floor,
under both domains and the moderation queue that reads them, so a link that holds a
submission is also a link removed from a note."""

from __future__ import annotations

import re
import unicodedata

# Links as spammers write them: schemes, www., Markdown links, HTML anchors and bare
# domains with the usual spam TLDs.
LINK = re.compile(r"(https?://|www\.|\]\(|<a\s|\b[a-z0-9-]+\.(com|net|org|io|ru|xyz)\b)",
                  re.IGNORECASE)
# Control, format (bidi overrides, zero-width) and private-use characters can hide or
# reorder text in the moderation view.
INVISIBLE = ("Cc", "Cf", "Co", "Cs")


def visible(text: str) -> str:
    """The text without invisible characters (newlines, tabs and spaces are kept)."""
    return "".join(c for c in text
                   if c in "\n\t " or unicodedata.category(c) not in INVISIBLE)


def hold_reason(text: str) -> str | None:
    """Why a visitor's text must wait for a curator, or None."""
    if LINK.search(text):
        return "contains links: held for a curator"
    if visible(unicodedata.normalize("NFKC", text)) != unicodedata.normalize("NFKC", text):
        return "contains invisible characters: held for a curator"
    return None
