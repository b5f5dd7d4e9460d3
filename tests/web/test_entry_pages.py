"""The visitor's entry pages over the demo market (issue 19): / shows markets with their
picture and keeps the developer links in its footer, the market page leads with the stalls
and filters by zone, the favicon and /docs are served locally, stories and recipes link to
their stalls and to where each ingredient is sold today."""

from __future__ import annotations

import re

MARKET = "greenhaven"


def test_index_shows_markets_with_pictures_and_footer_links(shared_server) -> None:
    with shared_server.client() as client:
        html = client.get("/").text
        picture = re.search(r'<div class="pic">\s*<img src="(/assets/[^"]+)" alt="([^"]*)"', html)
        assert picture, "the market has no picture"
        assert client.get(picture.group(1)).status_code == 200
    assert f'href="/m/{MARKET}"' in html and "Greenhaven Biophilia Bazaar" in html
    footer = html[html.index('<footer'):]
    for href in ("/docs", "/healthz", "/metrics", "/login"):
        assert f'href="{href}"' in footer  # reachable, but not what a visitor reads first
    assert 'href="/docs"' not in html[:html.index('<footer')]


def test_market_page_leads_with_stalls_and_filters_by_zone(shared_server) -> None:
    with shared_server.client() as client:
        html = client.get(f"/m/{MARKET}").text
        one = client.get(f"/m/{MARKET}", params={"zone": "fungi-grotto"}).text
        unknown = client.get(f"/m/{MARKET}", params={"zone": "nope"})
    assert html.index('class="card"') < html.index('id="pulse-map"')  # stalls first
    assert html.count('class="card"') == 10
    assert 'href="/m/greenhaven?zone=orchard-row#stalls"' in html  # chips and map zones
    assert re.search(r'<a href="/m/greenhaven\?zone=orchard-row#stalls">\s*<rect', html)
    assert one.count('class="card"') < 10 and 'href="/d/greenhaven/mycelium-collective"' in one
    assert 'href="/d/greenhaven/zonneveld-greens"' not in one
    assert 'aria-current="page">Fungi Grotto' in one
    assert unknown.status_code == 200 and unknown.text.count('class="card"') == 10
    assert "per each" not in html


def test_favicon_and_local_swagger_ui(shared_server) -> None:
    with shared_server.client() as client:
        icon = client.get("/favicon.ico")
        assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg")
        docs = client.get("/docs")
        assert docs.status_code == 200
        assets = re.findall(r'(?:src|href)="(/client/vendor/swagger-ui-[^"]+)"', docs.text)
        assert len(assets) == 2, docs.text  # the bundle and its CSS, from our own build
        for path in assets:
            assert client.get(path).status_code == 200
        assert "cdn" not in docs.text.lower()


def test_story_and_recipe_link_their_stalls_and_where_to_buy(shared_server) -> None:
    with shared_server.client() as client:
        story = client.get("/s/tomatoes-in-the-cold-tunnel").text
        recipe = client.get("/r/shakshuka-with-herbs").text
    assert 'href="/d/greenhaven/zonneveld-greens"' in story
    eggs = re.search(r"<li>6 pasture hen eggs(.*?)</li>", recipe, re.S)
    assert eggs and 'href="/d/greenhaven/kippenlust-eggs"' in eggs.group(1)
    assert "€" in eggs.group(1)
    onion = re.search(r"<li>1 onion(.*?)</li>", recipe, re.S)
    assert onion and "href" not in onion.group(1)  # not a market item: no stall
    assert "From these stalls" in recipe and "per each" not in recipe
