"""The studio's translations of a display (issue 23): every text of the display beside an
input in one of the market's other languages, saved through the YAML editor's write path
(If-Match, the loader's checks, a revision, the language channel streamed at once); a
stale page conflicts without writing, a refused text is named, only curators get in."""

from __future__ import annotations

import asyncio
import html
import re

import pytest

from holobazaar.channels import display_channel
from holobazaar.scenes import authoring

from support.accounts import Accounts, csrf_from
from support.live import LiveServer
from support.streamclient import joined

MARKET, DISPLAY = "greenhaven", "zonneveld-greens"
PAGE = f"/studio/{MARKET}/displays/{DISPLAY}/translations"
SOURCE = f"/api/v1/markets/{MARKET}/displays/{DISPLAY}/source"


@pytest.fixture
def curator(live_server: LiveServer):
    accounts = Accounts(live_server)
    accounts.user("tessa", ["curator"], [MARKET])
    with live_server.client() as client:
        accounts.login(client, "tessa")
        yield client


def _etag(page: str) -> str:
    found = re.search(r'name="etag" value="([^"]+)"', page)
    assert found, "no etag in the page"
    return html.unescape(found.group(1))


def _row(page: str, key: str) -> str:
    start = page.index(f'id="row-{key}"')
    return page[start:page.index('<div class="row', start + 10)
                if '<div class="row' in page[start + 10:] else len(page)]


def _file(live: LiveServer) -> bytes:
    return (live.content_dir / "scenes" / MARKET / "displays" / f"{DISPLAY}.yaml").read_bytes()


def _revisions(live: LiveServer) -> int:
    return len(authoring.revisions(live.app.state.services.scenes, MARKET, DISPLAY))  # type: ignore[attr-defined]


def test_page_lists_every_text_beside_its_source(live_server: LiveServer, curator) -> None:
    editor = curator.get(f"/studio/{MARKET}/displays/{DISPLAY}")
    overview = curator.get(f"/studio/{MARKET}")
    nl = curator.get(PAGE, params={"lang": "nl"})
    ar = curator.get(PAGE, params={"lang": "ar"})
    unknown = curator.get(PAGE, params={"lang": "xx"})
    assert 'id="translations-link"' in editor.text and PAGE in overview.text
    assert nl.status_code == 200, nl.text
    page = nl.text
    # The text as written, read-only, beside the Dutch one in an input.
    tagline = _row(page, "node.tagline.text")
    assert "Picked this morning · {{ farm.location }}" in tagline
    assert 'value="Vanochtend geplukt · {{ farm.location }}"' in tagline
    assert 'lang="nl" dir="ltr"' in tagline and 'data-status="done"' in tagline
    # The recipe card's body is several lines: a text area, the source kept as it wraps.
    body = _row(page, "node.recipe-card.body")
    assert "<textarea" in body and 'class="source"' in body
    assert 'data-count="missing">0 missing' in page  # the demo translates it all
    # The bakery's badge has no Dutch description: missing, and counted (4 of them).
    bakery = curator.get(f"/studio/{MARKET}/displays/korenbloem-bakery/translations").text
    assert 'data-status="missing"' in _row(bakery, "node.badge.alt")
    assert bakery.count('data-status="missing"') == 4
    assert 'data-count="missing">4 missing' in bakery
    # A label that only places the item's name is not counted, but can still be typed.
    assert 'data-status="values"' in _row(page, "node.tomato-1.label")
    assert "<details" in page[:page.index('id="row-node.tomato-1.label"')]
    # Arabic: typed right to left; an unknown language shows the first other one (Dutch).
    assert 'lang="ar" dir="rtl"' in _row(ar.text, "node.tagline.text")
    assert 'aria-current="page">Nederlands' in unknown.text


def test_save_writes_a_revision_and_streams_the_dutch_channel(live_server: LiveServer,
                                                              curator) -> None:
    channel = display_channel(MARKET, DISPLAY, "nl")
    before = _revisions(live_server)

    async def scenario() -> None:
        watcher = await joined(live_server.ws_url, channel)
        page = curator.get(PAGE, params={"lang": "nl"}).text
        saved = curator.post(f"{PAGE}/nl", data={
            "csrf": csrf_from(page), "etag": _etag(page),
            "f:node.tagline.text": "Vers van het land · {{ farm.location }}",
            "f:node.story.body": "Regel een\r\nRegel twee",
            "f:node.crate.label": "Groentekrat"})  # unchanged: not counted
        assert saved.status_code == 303, saved.text
        assert saved.headers["location"].endswith("lang=nl&saved=2#notice")

        def shown() -> str:
            return watcher.views[channel].state["nodes"]["tagline"]["text"]

        async with asyncio.timeout(10):
            while not shown().startswith("Vers van het land"):
                await watcher.next("patch")
        await watcher.close()

    asyncio.run(scenario())
    # The file: the new Dutch texts (the form's CRLF as LF), the English as it was.
    written = _file(live_server).decode()
    assert 'nl: {text: "Vers van het land · {{ farm.location }}"}' in written, written
    doc = authoring.read_source(live_server.app.state.services.scenes, MARKET, DISPLAY)[0]  # type: ignore[attr-defined]
    story = next(n for n in doc["display"]["nodes"] if n["id"] == "story")
    assert story["translations"]["nl"]["body"] == "Regel een\nRegel twee"
    assert "Picked this morning · {{ farm.location }}" in written
    revisions = authoring.revisions(live_server.app.state.services.scenes, MARKET, DISPLAY)  # type: ignore[attr-defined]
    assert len(revisions) == before + 1
    assert revisions[0].action == "translate nl" and revisions[0].actor == "tessa"
    after = curator.get(PAGE, params={"lang": "nl", "saved": "2"}).text
    assert "Saved 2 translations" in after
    assert 'data-status="done"' in _row(after, "node.story.body")
    # The Dutch visitor page shows the new text.
    with live_server.client() as visitor:
        dutch = visitor.get(f"/d/{MARKET}/{DISPLAY}", headers={"Accept-Language": "nl"})
    assert "Vers van het land" in dutch.text


def test_a_changed_original_is_marked(live_server: LiveServer, curator) -> None:
    doc = curator.get(SOURCE).json()
    etag = curator.get(SOURCE).headers["etag"]
    for node in doc["display"]["nodes"]:
        if node["id"] == "tagline":
            node["text"] = "Picked at dawn · {{ farm.location }}"
    headers = {**live_server.write_headers, "If-Match": etag}
    with live_server.client() as api:
        assert api.put(SOURCE, json=doc, headers=headers).status_code == 200
    page = curator.get(PAGE, params={"lang": "nl"}).text
    assert 'data-status="changed"' in _row(page, "node.tagline.text")
    assert 'data-status="done"' in _row(page, "node.crate.label")
    assert 'data-count="changed">1 whose original changed since' in page
    # Typing a new translation clears the mark.
    curator.post(f"{PAGE}/nl", data={"csrf": csrf_from(page), "etag": _etag(page),
                                     "f:node.tagline.text": "Bij zonsopgang geplukt"})
    page = curator.get(PAGE, params={"lang": "nl"}).text
    assert 'data-status="done"' in _row(page, "node.tagline.text")


def test_a_stale_page_conflicts_without_writing(live_server: LiveServer, curator) -> None:
    stale = curator.get(PAGE, params={"lang": "nl"}).text
    fresh = curator.get(PAGE, params={"lang": "nl"}).text
    first = curator.post(f"{PAGE}/nl", data={"csrf": csrf_from(fresh), "etag": _etag(fresh),
                                             "f:node.crate.label": "Kist met groenten"})
    assert first.status_code == 303
    written, revisions = _file(live_server), _revisions(live_server)
    late = curator.post(f"{PAGE}/nl", data={"csrf": csrf_from(stale), "etag": _etag(stale),
                                            "f:node.crate.label": "Groentekist",
                                            "f:node.tagline.text": "Mijn tekst"})
    assert late.status_code == 409
    assert "Someone saved this display after you opened this page" in late.text
    assert _file(live_server) == written and _revisions(live_server) == revisions
    # The late text stays in the boxes; the field changed meanwhile is marked with what
    # was saved; the page now carries the current revision, so saving again is possible.
    crate = _row(late.text, "node.crate.label")
    assert 'value="Groentekist"' in crate and "meanwhile" in crate
    assert "Kist met groenten" in crate
    assert "meanwhile" not in _row(late.text, "node.tagline.text").split('id="row-')[1][:80]
    assert _etag(late.text) != _etag(stale)


def test_refused_texts_are_named_and_nothing_is_written(live_server: LiveServer,
                                                        curator) -> None:
    page = curator.get(PAGE, params={"lang": "ar"}).text
    written, revisions = _file(live_server), _revisions(live_server)
    too_long = curator.post(f"{PAGE}/ar", data={
        "csrf": csrf_from(page), "etag": _etag(page), "f:node.tagline.text": "قطف " * 600,
        "f:node.crate.label": "صندوق"})
    broken = curator.post(f"{PAGE}/ar", data={
        "csrf": csrf_from(page), "etag": _etag(page),
        "f:node.price-board.title": "{{ farm.name", "f:node.crate.label": "صندوق"})
    unknown = curator.post(f"{PAGE}/ar", data={
        "csrf": csrf_from(page), "etag": _etag(page), "f:node.nowhere.text": "x"})
    other = curator.post(f"{PAGE}/en", data={"csrf": csrf_from(page), "etag": _etag(page)})
    assert too_long.status_code == 422, too_long.text[:500]
    assert 'href="#row-node.tagline.text">Text <code>tagline</code>' in too_long.text
    assert "at most 2000 characters" in _row(too_long.text, "node.tagline.text")
    assert 'aria-invalid="true"' in _row(too_long.text, "node.tagline.text")
    assert broken.status_code == 422, broken.text[:500]
    price_board = _row(broken.text, "node.price-board.title")
    assert 'aria-invalid="true"' in price_board and 'value="{{ farm.name"' in price_board
    assert "template syntax error" in price_board
    # Both at once: a text too long and a broken template are named together.
    both = curator.post(f"{PAGE}/ar", data={
        "csrf": csrf_from(page), "etag": _etag(page), "f:node.tagline.text": "x" * 2001,
        "f:node.price-board.title": "{% if story %}"})
    assert both.status_code == 422 and "2 texts were refused" in both.text
    assert 'aria-invalid="true"' in _row(both.text, "node.price-board.title")
    assert unknown.status_code == 422 and "no such text" in unknown.text
    assert other.status_code == 404
    assert _file(live_server) == written and _revisions(live_server) == revisions


def test_only_curators_of_the_market(live_server: LiveServer) -> None:
    accounts = Accounts(live_server)
    accounts.user("gerrit", ["grower"], [MARKET], farm="zonneveld")
    accounts.user("piet", ["performer"], [MARKET])
    written = _file(live_server)
    with live_server.client() as anonymous:
        signed_out = anonymous.get(PAGE)
    answers = []
    for name in ("gerrit", "piet"):
        with live_server.client() as client:
            accounts.login(client, name)
            shown = client.get(PAGE)
            token = csrf_from(client.get(shown.headers["location"]).text)
            sent = client.post(f"{PAGE}/nl", data={"csrf": token, "etag": "x",
                                                   "f:node.crate.label": "Van mij"})
            answers.append((shown, sent))
    assert signed_out.status_code == 303 and signed_out.headers["location"].startswith("/login")
    for shown, sent in answers:
        # Sent to their own studio page, never this one; the write is refused.
        assert shown.status_code == 303 and "/translations" not in shown.headers["location"]
        assert sent.status_code == 303 and "/translations" not in sent.headers["location"]
    assert _file(live_server) == written
