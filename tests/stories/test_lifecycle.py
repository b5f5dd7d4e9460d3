"""The lifecycle (draft -> review -> published -> archived) and revisions over the real
API: who may write, what the public sees, every save a revision, restore."""

from __future__ import annotations

from stories.helpers import MARKET, publish, story

BASE = f"/api/v1/markets/{MARKET}/stories"


def test_lifecycle_and_revisions(live_server):
    headers = live_server.write_headers
    with live_server.client() as client:
        assert client.post(BASE, json=story("spring-beds")).status_code == 401
        created = client.post(BASE, json=story("spring-beds"), headers=headers)
        assert created.status_code == 201, created.text
        assert created.json()["status"] == "draft" and created.json()["revision"] == 1
        # Drafts are invisible to the public.
        assert client.get("/api/v1/stories/spring-beds").status_code == 404
        assert client.get("/s/spring-beds").status_code == 404

        edit = story("spring-beds", title="Spring beds, mulched", body="Wood chips **deep**.")
        updated = client.put(f"{BASE}/spring-beds", json=edit, headers=headers)
        assert updated.status_code == 200 and updated.json()["revision"] == 2
        # Status moves only along the lifecycle.
        refused = client.post(f"{BASE}/spring-beds/publish", headers=headers)
        assert refused.status_code == 409 and "draft" in refused.json()["detail"]
        published = publish(client, headers, "stories", "spring-beds")
        assert published["status"] == "published" and published["revision"] == 4

        public = client.get("/api/v1/stories/spring-beds").json()
        assert public["document"]["title"] == "Spring beds, mulched"
        assert "<strong>deep</strong>" in public["html"]
        assert "Spring beds, mulched" in client.get("/s/spring-beds").text
        assert [s["slug"] for s in client.get("/api/v1/stories",
                                             params={"market": MARKET}).json()["results"]
                ].count("spring-beds") == 1

        revisions = client.get(f"{BASE}/spring-beds/revisions", headers=headers).json()
        assert [r["number"] for r in revisions] == [1, 2, 3, 4]
        assert [r["action"] for r in revisions] == ["create", "edit", "review", "published"]
        assert revisions[1]["changes"] == ["body", "title"]
        assert revisions[1]["actor"].startswith("token:")
        assert revisions[0]["snapshot"]["title"] == "Story spring-beds"

        # Restore revision 1's text: a new revision, still published, text is back.
        restored = client.post(f"{BASE}/spring-beds/revisions/1/restore", headers=headers)
        assert restored.status_code == 200, restored.text
        assert restored.json()["revision"] == 5 and restored.json()["status"] == "published"
        assert client.get("/api/v1/stories/spring-beds").json()["document"]["title"] == \
            "Story spring-beds"
        assert client.post(f"{BASE}/spring-beds/revisions/99/restore",
                           headers=headers).status_code == 404

        # An edit that changes nothing adds no revision.
        same = client.put(f"{BASE}/spring-beds", json=story("spring-beds"), headers=headers)
        assert same.json()["revision"] == 5

        archived = client.post(f"{BASE}/spring-beds/status", json={"status": "archived"},
                               headers=headers)
        assert archived.json()["status"] == "archived"
        assert client.get("/api/v1/stories/spring-beds").status_code == 404
        listed = client.get(BASE, params={"status": "archived"}, headers=headers).json()
        assert [r["slug"] for r in listed["results"]] == ["spring-beds"]


def test_bad_documents_are_refused_with_reasons(live_server):
    headers = live_server.write_headers
    with live_server.client() as client:
        bad = client.post(BASE, json=story("Bad Slug!"), headers=headers)
        assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["slug"]
        wrong_market = client.post(BASE, json=story("x", market="elsewhere"), headers=headers)
        assert wrong_market.status_code == 422 and "market" in wrong_market.json()["detail"]
        recipe_here = client.post(BASE, json={"kind": "recipe", "slug": "r"}, headers=headers)
        assert recipe_here.status_code == 422 and "kind" in recipe_here.json()["detail"]
        published = client.post(BASE, json=story("y", status="published"), headers=headers)
        assert published.status_code == 422
        assert client.post(BASE, content=b"{not json", headers=headers).status_code == 400
        big = story("big", body="x" * (live_server.settings.story_max_bytes + 1))
        too_big = client.post(BASE, json=big, headers=headers)
        assert too_big.status_code == 413 and "story_max_bytes" in too_big.json()["detail"]
        # The demo's slug is taken: create refuses, nothing half-stored.
        taken = client.post(BASE, json=story("tomatoes-in-the-cold-tunnel"), headers=headers)
        assert taken.status_code == 409
        listed = client.get(BASE, headers=headers).json()
        assert {r["slug"] for r in listed["results"]}.isdisjoint({"x", "y", "big", "r"})


def test_a_story_in_an_unknown_language_is_refused(live_server):
    """Stories take the languages markets take (holobazaar.i18n.Language): a code Babel
    (CLDR) does not know is refused with its reason; a region in capitals is kept as
    channels spell it."""
    headers = live_server.write_headers
    with live_server.client() as client:
        unknown = client.post(BASE, json=story("unknown-tongue", language="xx"), headers=headers)
        assert unknown.status_code == 422
        error = unknown.json()["detail"][0]
        assert error["loc"] == ["language"]
        assert "unknown language code 'xx'" in error["msg"]
        made = client.post(BASE, json=story("brazilian", language="pt-BR"), headers=headers)
        assert made.status_code == 201 and made.json()["document"]["language"] == "pt-br"


def test_demo_repository_is_imported_on_start(shared_server):
    with shared_server.client() as client:
        stories = client.get("/api/v1/stories", params={"market": MARKET}).json()
        recipes = client.get("/api/v1/recipes", params={"market": MARKET, "limit": 100}).json()
    assert stories["total"] >= 8 and recipes["total"] >= 12
    assert all(r["status"] == "published" for r in recipes["results"])


def test_display_page_links_story_and_recipes(shared_server):
    with shared_server.client() as client:
        page = client.get("/d/greenhaven/zonneveld-greens").text
        assert 'href="/s/tomatoes-in-the-cold-tunnel"' in page
        # The heading of the recipe links (the panel of the same name is not repeated).
        assert page.count("<h2 id=\"recipes-heading\">Cook from what's here</h2>") == 1
        assert "<h2>Cook from what" not in page and 'href="/r/' in page
        recipe = client.get("/r/brandywine-panzanella")
        assert recipe.status_code == 200 and "800 g ripe Brandywine tomatoes" in recipe.text
        assert client.get("/r/nope").status_code == 404
        producers = client.get("/api/v1/markets/greenhaven/producers").json()
        assert {p["id"] for p in producers} >= {"zonneveld", "bijenhof"}


def test_openapi_documents_the_story_api(shared_server):
    with shared_server.client() as client:
        doc = client.get("/openapi.json").json()
    paths = doc["paths"]
    for path in ("/api/v1/search", "/api/v1/stories", "/api/v1/recipes/{slug}.jsonld",
                 "/api/v1/markets/{market}/recipes/in-stock", "/api/v1/submissions",
                 "/api/v1/markets/{market}/stories/{slug}/revisions",
                 "/api/v1/markets/{market}/recipes/{slug}/revisions/{number}/restore"):
        assert path in paths, path
    body = paths["/api/v1/markets/{market}/recipes"]["post"]["requestBody"]
    assert body["content"]["application/json"]["schema"]["$ref"] == \
        "#/components/schemas/RecipeDoc"
    assert "recipe_yield" in doc["components"]["schemas"]["RecipeDoc"]["properties"]
