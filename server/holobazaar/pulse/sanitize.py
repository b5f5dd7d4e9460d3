"""Visitors' short text feedback is plain text (never HTML) shown to curators only after
moderation. Sanitizing makes it safe and readable to review; it never makes it trusted.
The link and invisible-character rules are those of community submissions
(holobazaar.visitor_text): a submission with a link is held, a note loses it."""

from __future__ import annotations

import re
import unicodedata

from holobazaar.visitor_text import LINK, visible

MAX_FEEDBACK = 280
# A whitespace-delimited word containing a link (by the shared rule) is removed whole.
_WORD = re.compile(r"\S+")
_SPACE = re.compile(r"\s+")
_REPEAT = re.compile(r"(.)\1{7,}")  # "!!!!!!!!!!!!" and similar floods


def sanitize_feedback(text: str) -> tuple[str, list[str]]:
    """The cleaned text and what was changed (kept with the held item for the curator)."""
    flags: list[str] = []
    clean = unicodedata.normalize("NFKC", text)
    kept = visible(clean)
    if kept != clean:
        flags.append("invisible characters removed")
    clean = _SPACE.sub(" ", kept).strip()
    if LINK.search(clean):
        clean = _WORD.sub(lambda m: "[link removed]" if LINK.search(m.group()) else m.group(),
                          clean)
        flags.append("links removed")
    if _REPEAT.search(clean):
        clean = _REPEAT.sub(lambda m: m.group(1) * 3, clean)
        flags.append("repetition shortened")
    if len(clean) > MAX_FEEDBACK:
        clean = clean[:MAX_FEEDBACK - 1].rstrip() + "…"
        flags.append(f"cut to {MAX_FEEDBACK} characters")
    return clean, flags
