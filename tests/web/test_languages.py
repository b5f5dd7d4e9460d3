"""Languages (issue 23): the page's language from Accept-Language or the picker's cookie,
Babel's formats, translations per field with fallback, a broken translation refused with
file and line, the display channel per language (composed once per language, however
many clients follow it) and an unknown language answered by the default channel."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path

from tests.support.content import copy_content
from tests.support.streamclient import StreamClient

from holobazaar import i18n
from holobazaar.channels import display_channel
from holobazaar.content import load_content
from holobazaar.scenes.compositor import compose_display

MARKET, DISPLAY = "greenhaven", "zonneveld-greens"
NBSP = "\xa0"
ROOT = Path(__file__).resolve().parents[2]


def plain(text: str) -> str:
    return text.replace(NBSP, " ").replace("\u200f", "")


def test_negotiation_and_formats() -> None:
    offered = ["en", "nl", "ar"]
    assert i18n.negotiate(offered, "en", accept_language="nl-BE,nl;q=0.9,en;q=0.5") == "nl"
    assert i18n.negotiate(offered, "en", accept_language="nl-NL") == "nl"
    assert i18n.negotiate(offered, "en", accept_language="fr-FR,ar;q=0.4") == "ar"
    assert i18n.negotiate(offered, "en", accept_language="fr, de;q=0.8") == "en"
    assert i18n.negotiate(offered, "en", accept_language="nl;q=0, ar") == "ar"  # q=0: never
    assert i18n.negotiate(offered, "en", chosen="ar", accept_language="nl") == "ar"  # cookie
    assert i18n.negotiate(offered, "nl", chosen="xx", accept_language=",;q=zz") == "nl"
    assert i18n.parse_accept_language("a" * 50 + ",nl") == ["nl"]
    assert plain(i18n.format_money("2.7", "EUR", "nl")) == "€ 2,70"
    assert i18n.format_money("2.7", "EUR", "en") == "€2.70"
    assert plain(i18n.format_money("1234.5", "EUR", "ar")).startswith("1,234.50")
    assert i18n.direction("ar") == "rtl" and i18n.direction("he") == "rtl"
    assert i18n.direction("nl") == "ltr"
    assert i18n.gettext("nl", "In stock") == "Op voorraad"
    assert i18n.gettext("de", "In stock") == "In stock"  # no catalogue: the source text
    assert i18n.client_messages("nl")["Sold out"] == "Uitverkocht"


def test_translations_fall_back_per_field() -> None:
    content = load_content(ROOT)
    market = content.markets[MARKET]
    seed = market.seed_items()
    display = market.displays[DISPLAY]
    refs = content.asset_refs()
    en, _ = compose_display(market.market, display, seed, refs, {}, language=None)
    nl, _ = compose_display(market.market, display, seed, refs, {}, language="nl")
    assert nl["language"] == "nl" and "language" not in en
    assert nl["display"]["title"] == "Tuinderij Zonneveld: groenten"
    assert nl["nodes"]["tagline"]["text"].startswith("Vanochtend geplukt")
    assert nl["nodes"]["price-board"]["title"] == "Vandaag aan de kraam"
    assert "€ 6,50" in plain(nl["nodes"]["tomato-price"]["text"])  # Babel, Dutch
    assert "€6.50" in en["nodes"]["tomato-price"]["text"]
    assert nl["nodes"]["tomato-stock"]["text"] == "Op voorraad"
    # No Dutch for the farm's practices nor the item names: the default text, not empty.
    assert nl["farm"]["practices"] == en["farm"]["practices"]
    assert nl["items"] == en["items"]  # inventory facts are the same in every language
    for state in (nl, en):
        texts = [n.get("text") for n in state["nodes"].values() if n["kind"] == "text"]
        assert all(t for t in texts if t is not None)
    # A translation that renders empty falls back to the default language's text.
    node = next(n for n in display.nodes if n.id == "tagline")
    emptied = node.model_copy(update={"translations": {"nl": node.translations["nl"].model_copy(
        update={"text": "{{ '' }}"})}})
    other = display.model_copy(update={"nodes": [emptied if n.id == "tagline" else n
                                                 for n in display.nodes]})
    state, _ = compose_display(market.market, other, seed, refs, {}, language="nl")
    assert state["nodes"]["tagline"]["text"] == en["nodes"]["tagline"]["text"]


def _validate(content: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "holobazaar", "validate", str(content)],
                          capture_output=True, text=True, timeout=60)


def test_validate_refuses_a_broken_translation_with_file_and_line(tmp_path: Path) -> None:
    content = copy_content(tmp_path / "content")
    path = content / "scenes" / MARKET / "displays" / f"{DISPLAY}.yaml"
    original = path.read_text()
    lines = original.splitlines()
    line = next(i for i, t in enumerate(lines, 1) if "nl: {title: Vandaag aan de kraam}" in t)
    cases = {
        # an unknown language code
        "nl: {title: Vandaag aan de kraam}": ("xx: {title: Vandaag aan de kraam}",
                                             "unknown language code 'xx'"),
        # a language the market does not offer
        "nl: {title: Vandaag aan de kraam}#": ("de: {title: Heute am Stand}",
                                              "not one of the market's other languages"),
        # the wrong type
        "nl: {title: Vandaag aan de kraam}##": ("nl: {title: [Vandaag, aan]}",
                                               "valid string"),
        # a field the node does not have
        "nl: {title: Vandaag aan de kraam}###": ("nl: {text: Vandaag}", "text"),
    }
    for index, (broken, expected) in enumerate(cases.values()):
        path.write_text(original.replace("nl: {title: Vandaag aan de kraam}", broken))
        if index == 0:  # the command itself once; the same report in-process after
            result = _validate(content)
            assert result.returncode == 1, result.stdout
            out = result.stdout + result.stderr
        else:
            found = load_content(content)
            assert not found.ok
            out = found.report()
        assert re.search(rf"{DISPLAY}\.yaml:{line}\b", out), (broken, out)
        assert expected in out, (broken, out)
    path.write_text(original)
    market = content / "scenes" / MARKET / "market.yaml"
    market.write_text(market.read_text().replace("languages: [en, nl, ar]",
                                                 "languages: [en, nl, ar, nl]"))
    out = load_content(content).report()
    assert "market.yaml" in out and "each language once" in out


def test_pages_in_the_visitors_language(shared_server) -> None:
    with shared_server.client() as client:
        nl = client.get(f"/d/{MARKET}/{DISPLAY}", headers={"Accept-Language": "nl-NL,nl;q=0.9"})
        ar = client.get(f"/d/{MARKET}/{DISPLAY}", headers={"Accept-Language": "ar"})
        fr = client.get(f"/d/{MARKET}/{DISPLAY}", headers={"Accept-Language": "fr"})
        client.cookies.set(i18n.COOKIE, "ar")
        cookie = client.get(f"/m/{MARKET}", headers={"Accept-Language": "nl"})
        client.cookies.clear()
        picked = client.get("/lang", params={"to": "nl", "next": f"/m/{MARKET}"},
                            follow_redirects=False)
        evil = client.get("/lang", params={"to": "nl", "next": "//evil.example/"},
                          follow_redirects=False)
        bad = client.get("/lang", params={"to": "xx"}, follow_redirects=False)
        catalogue = client.get("/i18n/ar.json").json()
    assert '<html lang="nl" dir="ltr">' in nl.text
    assert "Producten" in nl.text and "Tuinderij Zonneveld: groenten" in nl.text
    assert "€ 6,50" in plain(nl.text)
    assert f'"channel": "{display_channel(MARKET, DISPLAY, "nl")}"' in nl.text
    assert '<html lang="ar" dir="rtl">' in ar.text and "المنتجات" in ar.text
    assert '<html lang="en" dir="ltr">' in fr.text and "€6.50" in fr.text
    assert f'"channel": "{display_channel(MARKET, DISPLAY)}"' in fr.text
    assert '<html lang="ar" dir="rtl">' in cookie.text  # the picker's choice wins
    assert "صف البستان" in cookie.text  # a zone's name, translated in market.yaml
    assert picked.status_code == 303 and picked.headers["location"] == f"/m/{MARKET}"
    assert f"{i18n.COOKIE}=nl" in picked.headers["set-cookie"]
    assert evil.headers["location"] == "/"
    assert bad.status_code == 422
    assert catalogue["dir"] == "rtl" and catalogue["messages"]["Products"] == "المنتجات"
    # The 3D view's own words too (web-client/src/viewer.js).
    assert catalogue["messages"]["Reset view"] == "إعادة ضبط العرض"


def test_language_channels_composed_once_per_language(shared_server) -> None:
    scenes = shared_server.app.state.services.scenes  # type: ignore[attr-defined]
    nl_channel = display_channel(MARKET, DISPLAY, "nl")

    async def scenario() -> None:
        clients = [StreamClient(shared_server.ws_url) for _ in range(6)]
        for client in clients:
            await client.connect()
        await clients[0].hello(display_channel(MARKET, DISPLAY, "xx"))  # unknown: default
        for client in clients[1:5]:
            await client.hello(nl_channel)
        await clients[5].hello(display_channel(MARKET, DISPLAY, "ar"))
        for client in clients:
            await client.next("snapshot")
        assert clients[0].views.keys() == {display_channel(MARKET, DISPLAY)}
        assert clients[1].views[nl_channel].state["display"]["title"].endswith("groenten")
        # The grower's story on the display, in its published Dutch translation (the demo
        # ships it: stories/translations/nl/), in English on the default channel.
        nl_state = clients[1].views[nl_channel].state
        assert nl_state["nodes"]["story"]["title"] == "Tomaten in de koude tunnel"
        assert nl_state["bindings"]["stories"]["story"]["title"] == "Tomaten in de koude tunnel"
        assert clients[0].views[display_channel(MARKET, DISPLAY)].state["nodes"]["story"][
            "title"] == "Tomatoes in the cold tunnel"
        before = dict(scenes.composed)
        with shared_server.client() as http:
            response = http.patch(f"/api/v1/markets/{MARKET}/items/TOM-BRANDY",
                                  json={"price": "5.90"}, headers=shared_server.write_headers)
            assert response.status_code == 200, response.text
        for client in clients:
            await client.next("patch")
        composed = {lang: scenes.composed[(d, lang)] - before.get((d, lang), 0)
                    for d, lang in scenes.composed if d == DISPLAY}
        # One composition per language for the change, not one per client (4 follow nl).
        assert composed == {"": 1, "nl": 1, "ar": 1}, composed
        texts = [c.views[nl_channel].state["nodes"]["tomato-price"]["text"] for c in clients[1:5]]
        assert all("€ 5,90" in plain(t) for t in texts), texts
        assert "€5.90" in clients[0].views[display_channel(MARKET, DISPLAY)].state[
            "nodes"]["tomato-price"]["text"]
        # A reaction from a client on a language channel counts for its display.
        await clients[1].send({"type": "reaction", "market": MARKET, "display": DISPLAY,
                               "kind": "love", "device": "languages-test-device-1"})
        assert not [e for e in await clients[1].quiet(0.3) if e.get("type") == "error"]
        for client in clients:
            await client.close()

    asyncio.run(scenario())


def test_marker_cards_print_the_stall_name_in_the_markets_languages() -> None:
    from holobazaar.markers import service
    from holobazaar.markers.layout import render_card

    market = load_content(ROOT).markets[MARKET]
    markers = service.marker_set(market, "https://market.example", service.content_titles(market),
                                 service.content_titles_by_language(market))
    card = next(c for c in markers.cards if c.url.endswith(f"/{DISPLAY}"))
    assert card.title == "Tuinderij Zonneveld: vegetables"
    assert card.translations == ("Tuinderij Zonneveld: groenten", "Tuinderij Zonneveld: خضار")
    image = render_card(card, (1240, 700))
    assert image.size == (1240, 700)


def test_story_translations_have_their_own_review_and_fall_back(shared_server) -> None:
    slug = "tomatoes-in-the-cold-tunnel"  # the demo ships it in Dutch and Arabic
    recipe = "shakshuka-with-herbs"
    api = f"/api/v1/markets/{MARKET}/recipes/{recipe}/translations"
    with shared_server.client() as client:
        nl = client.get(f"/s/{slug}", headers={"Accept-Language": "nl"}).text
        fr = client.get(f"/s/{slug}", headers={"Accept-Language": "fr"}).text
        auth = shared_server.write_headers
        before = client.get(f"/r/{recipe}", headers={"Accept-Language": "nl"}).text
        draft = client.put(f"{api}/nl", headers=auth,
                           json={"name": "Shakshuka met kruiden", "description": "Eieren."})
        hidden = client.get(f"/r/{recipe}", headers={"Accept-Language": "nl"}).text
        early = client.post(f"{api}/nl/status", headers=auth, json={"status": "published"})
        review = client.post(f"{api}/nl/status", headers=auth, json={"status": "review"})
        published = client.post(f"{api}/nl/status", headers=auth, json={"status": "published"})
        shown = client.get(f"/r/{recipe}", headers={"Accept-Language": "nl"}).text
        listed = client.get(api, headers=auth).json()
        edited = client.put(f"{api}/nl", headers=auth, json={"name": "Shakshuka!"})
        after_edit = client.get(f"/r/{recipe}", headers={"Accept-Language": "nl"}).text
        unknown = client.put(f"{api}/xx", headers=auth, json={"name": "x"})
        wrong = client.put(f"{api}/ar", headers=auth, json={"name": 5})
        extra = client.put(f"{api}/ar", headers=auth, json={"title": "a story's field"})
        own = client.put(f"{api}/en", headers=auth, json={"name": "same language"})
        anonymous = client.put(f"{api}/ar", json={"name": "x"})
    assert '<main class="wrap story" lang="nl">' in nl and "Tomaten in de koude tunnel" in nl
    assert "gisten in een pot" in nl  # the body, translated
    assert "Tomatoes in the cold tunnel" in fr and "Tomaten" not in fr
    assert "Shakshuka met kruiden" not in before
    assert draft.status_code == 200 and draft.json()["status"] == "draft"
    assert "Shakshuka met kruiden" not in hidden  # a draft is not shown
    assert early.status_code == 409 and "review" in early.json()["detail"]
    assert review.status_code == 200 and published.status_code == 200, published.text
    assert "Shakshuka met kruiden" in shown
    assert "<h2>Ingrediënten</h2>" in shown  # the page's own text, from the catalogue
    assert [t["status"] for t in listed] == ["published"]
    assert edited.json()["status"] == "draft" and edited.json()["revision"] == 2
    assert "Shakshuka met kruiden" not in after_edit and "Shakshuka!" not in after_edit
    assert unknown.status_code == 422 and "unknown language code" in unknown.text
    assert wrong.status_code == 422 and "name" in wrong.text
    assert extra.status_code == 422 and "title" in extra.text
    assert own.status_code == 422 and "own language" in own.text
    assert anonymous.status_code == 401


def test_studio_edits_a_translation_beside_the_original(shared_server) -> None:
    from support.accounts import Accounts, csrf_from

    accounts = Accounts(shared_server)
    accounts.user("tina", ["curator"], [MARKET])
    slug = "thirty-hours-of-rye"
    where = f"/studio/{MARKET}/stories/story/{slug}/translations"
    with shared_server.client() as client:
        accounts.login(client, "tina")
        editor = client.get(f"/studio/{MARKET}/stories/story/{slug}")
        assert 'id="translations-link"' in editor.text
        page = client.get(where)
        assert page.status_code == 200, page.text
        csrf = csrf_from(page.text)
        assert 'id="lang-nl"' in page.text and 'id="lang-ar"' in page.text
        assert 'dir="rtl"' in page.text  # the Arabic fields are typed right to left
        early = client.post(f"{where}/nl", data={"csrf": csrf, "action": "publish",
                                                 "title": "Dertig uur rogge"})
        sent = client.post(f"{where}/nl", data={"csrf": csrf, "action": "review",
                                                "title": "Dertig uur rogge", "summary": "",
                                                "body": ""})
        reviewed = client.get(where)
        published = client.post(f"{where}/nl", data={"csrf": csrf, "action": "publish"})
        visitor = client.get(f"/s/{slug}", headers={"Accept-Language": "nl"})
        unknown = client.post(f"{where}/de", data={"csrf": csrf, "title": "x"})
    assert early.status_code == 409 and "send it for review first" in early.text
    assert sent.status_code == 303 and sent.headers["location"].endswith("#lang-nl")
    card = reviewed.text[reviewed.text.index('id="lang-nl"'):]
    assert 'data-status="review"' in card[:2000], card[:2000]
    assert 'value="Dertig uur rogge"' in card
    assert published.status_code == 303
    assert "<h1>Dertig uur rogge</h1>" in visitor.text  # the rest falls back to English
    assert unknown.status_code == 404


def test_nodes_importing_the_translations_at_once_do_not_collide(tmp_path: Path) -> None:
    """Two nodes starting on an empty database both import the demo's translation files
    (serve's start-up import): one creates each, the other leaves it (no UniqueViolation,
    no second revision)."""
    import threading

    from sqlalchemy import create_engine

    from holobazaar import db
    from holobazaar.stories import files, translations

    url = f"sqlite:///{tmp_path}/repo.db"
    db.upgrade(url)
    engine = create_engine(url)
    files.import_directory(engine, ROOT / "stories", "test", max_bytes=262_144)
    problems: list = []

    def start_node() -> None:
        problems.extend(translations.import_directory(engine, ROOT / "stories", "node").problems)

    nodes = [threading.Thread(target=start_node) for _ in range(3)]
    for node in nodes:
        node.start()
    for node in nodes:
        node.join(30)
    found = translations.list_for(engine, "story", "tomatoes-in-the-cold-tunnel")
    assert problems == []
    assert [(t.language, t.status, t.revision) for t in found] == [
        ("ar", "published", 1), ("nl", "published", 1)]
    engine.dispose()
