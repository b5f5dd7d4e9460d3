"""schema.org Recipe JSON-LD: the usual shapes from the web are imported (single object,
array, @graph), durations and yields parsed, unknown properties kept; anything that is
not a Recipe is refused with a clear message; export -> import -> export is identical."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from holobazaar.cli import app
from holobazaar.stories import jsonld

from support.content import REPO

WEB_RECIPE = {
    "@context": "https://schema.org/",
    "@type": ["Recipe", "NewsArticle"],
    "name": "Grandma's Pear Tart",
    "author": [{"@type": "Person", "name": "Wil de Boer"}],
    "image": [{"@type": "ImageObject", "url": "https://example.org/tart.jpg"}],
    "prepTime": "PT0H25M", "cookTime": "PT45M", "totalTime": "P0DT1H10M",
    "recipeYield": ["8", "8 slices"],
    "recipeCategory": ["Dessert", "Baking"],
    "keywords": "pear, tart, autumn",
    "suitableForDiet": "https://schema.org/VegetarianDiet",
    "recipeIngredient": ["4 Conference pears", "200 g flour", "2 pasture hen eggs"],
    "recipeInstructions": [
        {"@type": "HowToSection", "name": "Pastry", "itemListElement": [
            {"@type": "HowToStep", "text": "Rub flour and butter."}]},
        {"@type": "HowToStep", "text": "Slice the pears."}, "Bake for 45 minutes."],
    "aggregateRating": {"@type": "AggregateRating", "ratingValue": "4.8"},
    "nutrition": {"@type": "NutritionInformation", "calories": "320 kcal"},
}


def test_web_recipe_is_normalised_and_extra_kept():
    from holobazaar.content import load_content

    items = load_content(REPO).markets["greenhaven"].seed_items()
    (doc,) = jsonld.parse(json.dumps({"@context": "https://schema.org",
                                      "@graph": [{"@type": "WebPage", "name": "x"},
                                                 WEB_RECIPE]}), "greenhaven", items)
    assert doc.slug == "grandma-s-pear-tart" and doc.author == "Wil de Boer"
    assert (doc.prep_time, doc.cook_time, doc.total_time) == ("PT25M", "PT45M", "PT1H10M")
    assert doc.recipe_yield == "8 slices" and doc.servings == 8
    assert doc.keywords == ["pear", "tart", "autumn"] and doc.diets == ["VegetarianDiet"]
    assert doc.instructions == ["Rub flour and butter.", "Slice the pears.",
                                "Bake for 45 minutes."]
    assert [g.sku for g in doc.ingredients] == ["PER-CONFERENCE", None, "EGG-HEN-6"]
    assert doc.image == "https://example.org/tart.jpg" and doc.category == "Dessert"
    assert set(doc.extra) == {"aggregateRating", "nutrition"}
    out = jsonld.from_document(doc)
    assert out["nutrition"] == WEB_RECIPE["nutrition"]
    assert out["recipeInstructions"][0] == {"@type": "HowToStep",
                                            "text": "Rub flour and butter."}


@pytest.mark.parametrize(("document", "message"), [
    ({"@type": "Person", "name": "x"}, "not a schema.org Recipe (@type is 'Person')"),
    ([WEB_RECIPE, {"@type": "Thing"}], "item 1: not a schema.org Recipe"),
    ({"@graph": [{"@type": "WebPage"}]}, "the @graph holds no schema.org Recipe"),
    ([], "empty array"),
    ({**WEB_RECIPE, "prepTime": "25 minutes"}, "prep_time"),
    ({**WEB_RECIPE, "name": ""}, "Recipe has no name"),
    ({k: v for k, v in WEB_RECIPE.items() if k != "recipeIngredient"}, "ingredients"),
    ({**WEB_RECIPE, "suitableForDiet": "PaleoDiet"}, "unknown diet 'PaleoDiet'"),
])
def test_not_a_recipe_is_refused(document, message):
    with pytest.raises(jsonld.JsonLdError, match=message.replace("(", r"\(").replace(
            ")", r"\)").replace("[", r"\[")):
        jsonld.parse(json.dumps(document), "greenhaven")


def test_jsonld_round_trip_through_api_and_cli(live_server, tmp_path):
    runner = CliRunner()
    with live_server.client() as http:
        first = http.get("/api/v1/recipes/goudreinet-apple-cake.jsonld")
        assert first.status_code == 200
        assert first.headers["content-type"].startswith("application/ld+json")
        body = first.json()
        assert body["@type"] == "Recipe" and body["cookTime"] == "PT1H"
        assert body["suitableForDiet"] == ["https://schema.org/VegetarianDiet"]
        assert http.get("/api/v1/recipes/nope.jsonld").status_code == 404
        path = tmp_path / "cake.jsonld"
        path.write_bytes(first.content)
        data = ["--data-dir", str(tmp_path / "var"), "--content", str(live_server.content_dir)]
        result = runner.invoke(app, ["import", "recipes", str(path), "--market", "greenhaven",
                                     "--status", "published", *data])
        assert result.exit_code == 0, result.output
        assert "imported goudreinet-apple-cake" in result.output
        # Export from the second database through the same code path: identical bytes.
        from holobazaar import db
        from holobazaar.stories import service

        engine = db.make_engine(f"sqlite:///{tmp_path / 'var' / 'holobazaar.db'}")
        saved = service.get(engine, "recipe", "goudreinet-apple-cake")
        engine.dispose()
        assert jsonld.dumps(jsonld.from_document(saved.doc)).encode() == first.content

        bad = tmp_path / "bad.jsonld"
        bad.write_text('{"@type": "Movie", "name": "x"}')
        refused = runner.invoke(app, ["import", "recipes", str(bad), "--market",
                                      "greenhaven", *data])
        assert refused.exit_code == 1 and "not a schema.org Recipe" in refused.output

        # The API import: an @graph, as drafts, ingredients linked to items by name.
        headers = live_server.write_headers
        url = "/api/v1/markets/greenhaven/recipes-jsonld"
        assert http.post(url, json={"@graph": [WEB_RECIPE]}).status_code == 401
        created = http.post(url, json={"@graph": [WEB_RECIPE]}, headers=headers)
        assert created.status_code == 201, created.text
        got = http.get("/api/v1/markets/greenhaven/recipes/grandma-s-pear-tart",
                       headers=headers).json()
        assert got["status"] == "draft"
        assert got["document"]["ingredients"][0]["sku"] == "PER-CONFERENCE"
        not_recipe = http.post(url, json={"@type": "Event"}, headers=headers)
        assert not_recipe.status_code == 422 and "Recipe" in not_recipe.json()["detail"]
