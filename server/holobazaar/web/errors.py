"""The page a browser gets when a page request fails on a bug (holobazaar.edges answers
API calls with JSON): what happened in plain words, and the id to quote."""

from __future__ import annotations

from holobazaar.web.pages import templates


def error_page(scope: dict, error_id: str) -> tuple[bytes, str]:
    html = templates.get_template("error.html").render(error_id=error_id)
    return html.encode(), "text/html; charset=utf-8"
