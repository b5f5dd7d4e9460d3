"""Visitors' short text feedback is plain text (never HTML) shown to curators only after
moderation. Sanitizing makes it safe and readable to review; it never makes it trusted."""

from __future__ import annotations

import re
import unicodedata

MAX_FEEDBACK = 280
_URL = re.compile(r"(?i)\b(?:https?://|www\.)\S+")
_SPACE = re.compile(r"\s+")
_REPEAT = re.compile(r"(.)\1{7,}")  # "!!!!!!!!!!!!" and similar floods


def sanitize_feedback(text: str) -> tuple[str, list[str]]:
    """The cleaned text and what was changed (kept with the held item for the curator)."""
    flags: list[str] = []
    clean = unicodedata.normalize("NFKC", text)
    # Control, format (bidi overrides, zero-width) and private-use characters can hide or
    # reorder text in the moderation view.
    kept = "".join(c for c in clean
                   if c in "\n\t " or unicodedata.category(c) not in ("Cc", "Cf", "Co", "Cs"))
    if kept != clean:
        flags.append("invisible characters removed")
    clean = _SPACE.sub(" ", kept).strip()
    if _URL.search(clean):
        clean = _URL.sub("[link removed]", clean)
        flags.append("links removed")
    if _REPEAT.search(clean):
        clean = _REPEAT.sub(lambda m: m.group(1) * 3, clean)
        flags.append("repetition shortened")
    if len(clean) > MAX_FEEDBACK:
        clean = clean[:MAX_FEEDBACK - 1].rstrip() + "…"
        flags.append(f"cut to {MAX_FEEDBACK} characters")
    return clean, flags
