"""schema.org Recipe as JSON-LD, both ways.

Import accepts a single Recipe, an array, or an `@graph` (as web pages embed them); the
usual variants are normalised (HowToStep/HowToSection instructions, Person authors,
ImageObject images, comma-separated keywords, diet URLs, yields as numbers or lists) and
every property Holobazaar does not model is kept in `extra` and written back on export.
Export is deterministic, so export -> import -> export is byte-identical."""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from holobazaar import jsonlimits
from holobazaar.scenes.compositor import ItemFacts
from holobazaar.stories.schema import RecipeDoc

MODELLED = {
    "@context", "@type", "identifier", "name", "description", "recipeIngredient",
    "ingredients", "recipeInstructions", "prepTime", "cookTime", "totalTime", "recipeYield",
    "recipeCategory", "recipeCuisine", "keywords", "suitableForDiet", "author", "image",
    "inLanguage",
}
_STOP = {"and", "with", "the", "for", "box", "jar", "each", "fresh", "bunch", "seed"}


class JsonLdError(ValueError):
    pass


def _is_recipe(node: Any) -> bool:
    if not isinstance(node, dict):
        return False
    types = node.get("@type")
    types = types if isinstance(types, list) else [types]
    return any(isinstance(t, str) and t.rsplit("/", 1)[-1] == "Recipe" for t in types)


def recipe_nodes(data: Any) -> list[dict[str, Any]]:
    """The Recipe objects of a JSON-LD document; anything else is a clear error."""
    if isinstance(data, dict) and "@graph" in data:
        graph = data["@graph"]
        if not isinstance(graph, list):
            raise JsonLdError("@graph must be an array")
        found = [n for n in graph if _is_recipe(n)]
        if not found:
            raise JsonLdError("the @graph holds no schema.org Recipe")
        return found
    nodes = data if isinstance(data, list) else [data]
    if not nodes:
        raise JsonLdError("the document is an empty array: no Recipe to import")
    for index, node in enumerate(nodes):
        if not _is_recipe(node):
            kind = node.get("@type") if isinstance(node, dict) else type(node).__name__
            where = f"item {index}: " if isinstance(data, list) else ""
            raise JsonLdError(f"{where}not a schema.org Recipe (@type is {kind!r})")
    return nodes


def slugify(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:80].strip("-")
    return slug or "recipe"


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, list):
        return _text(value[0]) if value else None
    if isinstance(value, dict):
        return _text(value.get("name") or value.get("text") or value.get("url"))
    return str(value).strip()


def _texts(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, list):
        return [t for v in value if (t := _text(v))]
    return [t] if (t := _text(value)) else []


def _instructions(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [line.strip() for line in value.splitlines() if line.strip()]
    if isinstance(value, dict):
        value = [value]
    steps: list[str] = []
    for step in value if isinstance(value, list) else []:
        if isinstance(step, str):
            steps.append(step.strip())
        elif isinstance(step, dict) and "itemListElement" in step:  # HowToSection
            steps.extend(_instructions(step["itemListElement"]))
        elif isinstance(step, dict) and (text := step.get("text") or step.get("name")):
            steps.append(str(text).strip())
    return [s for s in steps if s]


def _yield(value: Any) -> str | None:
    # recipeYield may be "4", 4, "4 servings" or ["4", "4 servings"]: keep the most
    # descriptive text (the longest), the number is parsed from it when needed.
    values = value if isinstance(value, list) else [value]
    texts = [str(v).strip() for v in values if v is not None and str(v).strip()]
    return max(texts, key=len) if texts else None


def _words(text: str) -> set[str]:
    out = set()
    for word in re.findall(r"[a-z]+", text.lower()):
        if len(word) >= 3 and word not in _STOP:
            out.add(word[:-1] if word.endswith("s") and len(word) > 3 else word)
    return out


def match_sku(ingredient: str, items: Mapping[str, ItemFacts]) -> str | None:
    """Best-effort link from an ingredient line to an inventory item: the item whose
    name shares the most words with it (plural-insensitive); ties go to the item in
    stock, then to the SKU order. None when no word matches."""
    words = _words(ingredient)
    best: tuple[int, int, str] | None = None
    for sku in sorted(items):
        score = len(words & _words(items[sku].name))
        if score == 0:
            continue
        key = (score, int(items[sku].status != "sold_out"), sku)
        if best is None or key[:2] > best[:2]:
            best = key
    return best[2] if best else None


def to_document(node: Mapping[str, Any], market: str,
                items: Mapping[str, ItemFacts] | None = None,
                status: str = "draft") -> RecipeDoc:
    name = _text(node.get("name"))
    if not name:
        raise JsonLdError("Recipe has no name")
    identifier = _text(node.get("identifier"))
    slug = identifier if identifier and re.fullmatch(r"[a-z0-9][a-z0-9-]{0,99}", identifier) \
        else slugify(name)
    ingredients = _texts(node.get("recipeIngredient", node.get("ingredients"))) \
        if not isinstance(node.get("recipeIngredient"), str) else [node["recipeIngredient"]]
    data: dict[str, Any] = {
        "kind": "recipe", "slug": slug, "market": market, "status": status, "name": name,
        "description": _text(node.get("description")) or "",
        "ingredients": [{"text": g, "sku": match_sku(g, items) if items else None}
                        for g in ingredients],
        "instructions": _instructions(node.get("recipeInstructions")),
        "prep_time": _text(node.get("prepTime")), "cook_time": _text(node.get("cookTime")),
        "total_time": _text(node.get("totalTime")),
        "recipe_yield": _yield(node.get("recipeYield")),
        "category": _text(node.get("recipeCategory")),
        "cuisine": _text(node.get("recipeCuisine")),
        "keywords": _texts(node.get("keywords")),
        "diets": _texts(node.get("suitableForDiet")),
        "author": _text(node.get("author")) or "",
        "image": _text(node.get("image")),
        "language": _text(node.get("inLanguage")) or "en",
        "extra": {k: v for k, v in node.items() if k not in MODELLED},
    }
    try:
        return RecipeDoc.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise JsonLdError(f"Recipe {name!r}: {where}: {first['msg']}") from None


def parse(text: str | bytes, market: str, items: Mapping[str, ItemFacts] | None = None,
          status: str = "draft") -> list[RecipeDoc]:
    try:
        data = jsonlimits.loads(text)
    except jsonlimits.JSONInputError as exc:
        raise JsonLdError(f"not JSON: {exc.message}") from None
    docs = [to_document(node, market, items, status) for node in recipe_nodes(data)]
    slugs = [d.slug for d in docs]
    if len(set(slugs)) != len(slugs):
        raise JsonLdError("two recipes would get the same slug: give each an identifier")
    return docs


def from_document(doc: RecipeDoc) -> dict[str, Any]:
    out: dict[str, Any] = {"@context": "https://schema.org", "@type": "Recipe",
                           "identifier": doc.slug, "name": doc.name}
    optional: dict[str, Any] = {
        "description": doc.description or None,
        "author": {"@type": "Person", "name": doc.author} if doc.author else None,
        "image": doc.image,
        "inLanguage": doc.language,
        "recipeYield": doc.recipe_yield,
        "prepTime": doc.prep_time, "cookTime": doc.cook_time, "totalTime": doc.total_time,
        "recipeCategory": doc.category, "recipeCuisine": doc.cuisine,
        "keywords": ", ".join(doc.keywords) or None,
        "suitableForDiet": [f"https://schema.org/{d}" for d in doc.diets] or None,
        "recipeIngredient": [g.text for g in doc.ingredients],
        "recipeInstructions": [{"@type": "HowToStep", "text": s} for s in doc.instructions]
        or None,
    }
    out.update({k: v for k, v in optional.items() if v is not None})
    for key, value in doc.extra.items():
        out.setdefault(key, value)
    return out


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2) + "\n"
