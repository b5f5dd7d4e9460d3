"""Hostile Markdown and text never survive into a page or a display state: <script>,
javascript: links, event-handler attributes and iframes are removed by the sanitizer."""

from __future__ import annotations

import asyncio
from html.parser import HTMLParser

from holobazaar.stories.markup import markdown_text, plain_text, render_markdown
from stories.helpers import MARKET, publish, story

from support.streamclient import StreamClient

HOSTILE = """Hello <script>alert('s')</script> world.

[click](javascript:alert(1)) <a href="JaVaScRiPt:alert(2)" onclick="alert(3)">x</a>
<img src="x" onerror="alert(4)"> <iframe src="https://evil.example"></iframe>
<div onmouseover="alert(5)" style="background:url(javascript:alert(6))">hover</div>

<svg onload="alert(7)"></svg> [ok](https://example.org) **bold**
"""


class TagCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs) -> None:
        self.tags.append((tag, dict(attrs)))


def dangerous(html: str) -> list[str]:
    parser = TagCollector()
    parser.feed(html)
    found = []
    for tag, attrs in parser.tags:
        if tag in ("script", "iframe", "svg", "object", "embed", "style"):
            found.append(tag)
        for name, value in attrs.items():
            if name.startswith("on") or name == "style":
                found.append(f"{tag}[{name}]")
            if name in ("href", "src") and value and "javascript" in value.lower():
                found.append(f"{tag}[{name}={value}]")
    return found


def test_sanitizer_removes_every_vector():
    html = render_markdown(HOSTILE)
    assert dangerous(html) == []
    assert '<a href="https://example.org"' in html and "<strong>bold</strong>" in html
    text = markdown_text(HOSTILE)
    assert "<" not in text and "alert('s')" not in text and "hover" in text
    assert plain_text("<b>Farm</b><script>x()</script>") == "Farm"


def test_hostile_story_on_page_api_and_display(live_server):
    headers = live_server.write_headers
    doc = story("hostile", title="<script>alert(1)</script>Sneaky <b>title</b>",
                summary='<img src=x onerror="alert(2)">Summary', body=HOSTILE,
                beats=[{"text": "<iframe src='https://evil.example'></iframe>Beat one"}])
    channel = f"market/{MARKET}/display/zonneveld-greens"

    async def scenario() -> dict:
        client = StreamClient(live_server.ws_url)
        await client.connect()
        await client.hello(channel)
        await client.next("snapshot")
        with live_server.client() as http:
            response = http.post(f"/api/v1/markets/{MARKET}/stories", json=doc,
                                 headers=headers)
            assert response.status_code == 201, response.text
            await asyncio.to_thread(publish, http, headers, "stories", "hostile")
        await client.next("patch")
        state = client.views[channel].state
        await client.close()
        return state

    state = asyncio.run(scenario())
    shown = state["bindings"]["stories"]["story"]
    assert shown["title"] == "Sneaky title"
    assert shown["excerpt"] == "Summary"
    assert shown["beats"][0]["text"] == "Beat one"
    flat = repr(state).lower()
    for needle in ("<script", "<iframe", "onerror", "javascript:alert(2)", "<img"):
        assert needle not in flat
    with live_server.client() as http:
        page = http.get("/s/hostile")
        api = http.get("/api/v1/stories/hostile").json()
    assert page.status_code == 200
    # The page's own stylesheet aside, nothing from the story is active markup.
    article = page.text.split("<article>", 1)[1].split("</article>", 1)[0]
    assert dangerous(article) == [] and dangerous(api["html"]) == []
    body = page.text.split("</style>", 1)[1]
    assert dangerous(body) == [] and "<script" not in page.text.lower()
    assert "Sneaky title" in page.text
