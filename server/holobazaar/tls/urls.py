"""Checking the public base URL that markers and printed links point to."""

from __future__ import annotations

from urllib.parse import urlsplit


def check_base_url(value: str) -> str:
    """An absolute http(s) URL with a host and no query or fragment; returned without a
    trailing slash so `{base}/d/{market}/{display}` is well-formed."""
    text = value.strip()
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018  (raises ValueError on a bad port)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{value!r} is not an absolute http:// or https:// URL")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError(f"{value!r} must not carry a query, fragment or credentials")
    if any(c.isspace() for c in text):
        raise ValueError(f"{value!r} contains whitespace")
    return text.rstrip("/")
