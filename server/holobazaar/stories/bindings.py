"""Stories and recipes on displays: the `stories` binding provider and "cook from what's
here".

Templates get `story` (the display's producer's published story: title, excerpt, html,
beats, author, url), `stories` (all of them for that producer) and the callable
`recipes_in_stock(limit=3)`. The display state gets the same as plain data under
`bindings.stories` for the client's overlay. The provider reads a per-market cache of the
published documents, refreshed after every change before the displays are recomposed."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.engine import Engine

from holobazaar import db
from holobazaar.scenes.compositor import Binding, ItemFacts, template_view
from holobazaar.scenes.loader import MarketContent
from holobazaar.scenes.models import Display, iter_nodes
from holobazaar.stories import service
from holobazaar.stories.markup import excerpt, render_markdown
from holobazaar.stories.schema import RecipeDoc, StoryDoc
from holobazaar.stories.translations import published_in_market, translated

NAME = "stories"
_EPOCH = datetime.min.replace(tzinfo=UTC)


def in_stock(facts: ItemFacts | None) -> bool:
    return facts is not None and facts.status != "sold_out" and facts.stock != 0


def rank_recipes(recipes: list[RecipeDoc], items: Mapping[str, ItemFacts], *,
                 wanted: set[str] | None = None, limit: int = 3) -> list[dict[str, Any]]:
    """Recipes whose linked ingredients the market has now, ranked by how many it has
    (then by the share of linked ingredients it has, then by name). With `wanted` (a
    display's items) only recipes using at least one of them in stock are kept."""
    ranked = []
    for recipe in recipes:
        linked = [g for g in recipe.ingredients if g.sku]
        have = [g for g in linked if in_stock(items.get(g.sku or ""))]
        if not have or (wanted is not None and not wanted & {g.sku for g in have}):
            continue
        ranked.append(((-len(have), -len(have) / len(linked), recipe.name, recipe.slug), {
            "slug": recipe.slug, "name": recipe.name, "description": recipe.description,
            "have": len(have), "linked": len(linked), "ingredients": len(recipe.ingredients),
            "in_stock": [g.sku for g in have],
            "missing": [g.text for g in linked if g not in have],
            "total_time": recipe.total_time, "url": f"/r/{recipe.slug}",
        }))
    ranked.sort(key=lambda pair: pair[0])
    return [entry for _, entry in ranked[:max(0, min(limit, 20))]]


def story_view(story: StoryDoc) -> dict[str, Any]:
    return {
        "slug": story.slug, "title": story.title, "author": story.author,
        "excerpt": story.summary or excerpt(story.body),
        "html": render_markdown(story.body), "url": f"/s/{story.slug}",
        "beats": [{"text": b.text, "media": b.media, "model": b.model, "duration": b.duration}
                  for b in story.beats],
    }


@dataclass
class MarketStories:
    stories: list[tuple[datetime, StoryDoc]] = field(default_factory=list)
    recipes: list[RecipeDoc] = field(default_factory=list)
    # (kind, slug, language) -> a published translation's fields (stories/translations.py)
    translations: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    # Made once per language: a loaded cache is replaced whole, never changed in place.
    languages: dict[str, MarketStories] = field(default_factory=dict, compare=False,
                                                repr=False)

    def in_language(self, language: str) -> MarketStories:
        """The same documents with their published translations into `language` in place,
        field by field (the others as written)."""
        found = self.languages.get(language)
        if found is not None:
            return found

        def tr(kind: str, doc: Any) -> Any:
            fields = self.translations.get((kind, doc.slug, language))
            return translated(doc, fields, language) if fields else doc

        found = self.languages[language] = MarketStories(
            [(at, tr("story", s)) for at, s in self.stories],
            [tr("recipe", r) for r in self.recipes], self.translations)
        return found


def wanted_items(display: Display) -> set[str]:
    """The display's items and the items its nodes are bound to."""
    return set(display.items) | {n.item for n, _ in iter_nodes(display.nodes) if n.item}


def linked_items(cache: MarketStories, display: Display) -> set[str]:
    """Every SKU whose stock can change the display's recipes: those of the recipes using
    one of its items, or of every recipe when it has none (all are ranked then)."""
    wanted = wanted_items(display)
    linked: set[str] = set()
    for recipe in cache.recipes:
        skus = {g.sku for g in recipe.ingredients if g.sku}
        if not wanted or skus & wanted:
            linked |= skus
    return linked


def display_stories(cache: MarketStories, display: Display) -> list[StoryDoc]:
    """The display's producer's stories, newest first; else stories about its items."""
    items = wanted_items(display)
    newest = sorted(cache.stories, key=lambda pair: (pair[0], pair[1].slug), reverse=True)
    by_farm = [s for _, s in newest if display.farm and display.farm in s.producers]
    return by_farm or [s for _, s in newest if items & set(s.items)]


def make_binding(cache: MarketStories, display: Display,
                 items: Mapping[str, ItemFacts]) -> Binding:
    stories = display_stories(cache, display)
    wanted = wanted_items(display)

    def recipes_in_stock(limit: int = 3) -> list[Any]:
        return template_view(rank_recipes(cache.recipes, items, wanted=wanted or None,
                                          limit=limit))

    views = [story_view(s) for s in stories]
    context: dict[str, Any] = {"story": views[0] if views else None, "stories": views,
                               "recipes_in_stock": recipes_in_stock}
    state = None
    recipes = rank_recipes(cache.recipes, items, wanted=wanted or None, limit=3)
    if views or recipes:
        # Plain text only in state (the client draws it); full HTML is on /s/<slug>.
        story = {k: v for k, v in views[0].items() if k != "html"} if views else None
        state = {"story": story, "recipes": recipes}
    return Binding(context=context, state=state)


class StoryBindings:
    """The provider registered with the SceneService (web/app.py)."""

    name = NAME

    def __init__(self, engine: Engine, items: Callable[[str], Mapping[str, ItemFacts]]) -> None:
        self.engine = engine
        self.items = items
        self.markets: dict[str, MarketStories] = {}
        # Every display is composed per change and language, and a binding renders its
        # stories' Markdown: kept while its inputs are the same (`_made`). By market and
        # display id: a reload's new objects take their old entries' places.
        self._linked: dict[tuple[str, str], tuple[MarketStories, Display, frozenset[str]]] = {}
        self._bindings: dict[tuple[str, str, str], tuple[tuple[Any, ...], Binding]] = {}

    def _linked_items(self, market: str, cache: MarketStories,
                      display: Display) -> frozenset[str]:
        found = self._linked.get((market, display.id))
        if found is None or found[0] is not cache or found[1] is not display:
            found = self._linked[(market, display.id)] = (
                cache, display, frozenset(linked_items(cache, display)))
        return found[2]

    def _made(self, market: str, cache: MarketStories, display: Display,
              language: str) -> Binding:
        """make_binding, or the same binding again while the cache, the display, the
        items mapping and the facts of every item its recipes read are unchanged."""
        items = self.items(market)
        linked = self._linked_items(market, self.markets[market], display)
        facts = tuple((sku, items.get(sku)) for sku in sorted(linked))
        found = self._bindings.get((market, display.id, language))
        if found is not None:
            (was_cache, was_display, was_items, was_facts), binding = found
            if (was_cache is cache and was_display is display and was_items is items
                    and was_facts == facts):
                return binding
        binding = make_binding(cache, display, items)
        self._bindings[(market, display.id, language)] = ((cache, display, items, facts),
                                                          binding)
        return binding

    def load(self, market: str) -> None:
        cache = MarketStories()
        for saved in service.published(self.engine, market):
            if isinstance(saved.doc, StoryDoc):
                cache.stories.append((saved.published_at or _EPOCH, saved.doc))
            elif isinstance(saved.doc, RecipeDoc):
                cache.recipes.append(saved.doc)
        cache.translations = published_in_market(self.engine, market)
        self.markets[market] = cache

    async def reload(self, market: str) -> None:
        await db.call(self.engine, self.load, market)

    def recipe_names(self, market: str) -> dict[str, str]:
        """The market's published recipes, slug -> name (pulse checks recipe reactions
        against it and names them on its dashboard), from the cache: no database read."""
        cache = self.markets.get(market)
        return {r.slug: r.name for r in cache.recipes} if cache else {}

    def items_of(self, market: MarketContent, display: Display) -> set[str]:
        """Every SKU linked by a recipe that uses one of the display's items (by every
        recipe, for a display without items): a change of any of them can re-rank the
        display's "cook from what's here"."""
        cache = self.markets.get(market.id)
        return set() if cache is None else set(self._linked_items(market.id, cache, display))

    def binding(self, market: MarketContent, display: Display) -> Binding | None:
        cache = self.markets.get(market.id)
        if cache is None:
            return Binding(context={"story": None, "stories": [],
                                    "recipes_in_stock": lambda limit=3: []})
        return self._made(market.id, cache, display, "")

    def binding_in(self, market: MarketContent, display: Display,
                   language: str) -> Binding | None:
        """The binding on the display's channel in `language`: the stories and recipes
        in their published translations (SceneService.bindings)."""
        cache = self.markets.get(market.id)
        if cache is None or not cache.translations:
            return self.binding(market, display)
        return self._made(market.id, cache.in_language(language), display, language)


SAMPLE_STORY = StoryDoc(slug="sample-story", market="sample", title="A sample story",
                        summary="A grower's story, as a display shows it.",
                        body="The story *body*.", author="Sample author",
                        beats=[{"text": "First step of the story."}])
SAMPLE_RECIPE = RecipeDoc(slug="sample-recipe", market="sample", name="A sample recipe",
                          ingredients=[{"text": "an ingredient", "sku": "SAMPLE"}],
                          total_time="PT30M")


def sample_binding(market: Any, display: Display) -> Binding:
    """What validation renders templates with (`holobazaar validate`): a sample story and
    recipe, so `{{ story.title }}` and `recipes_in_stock()` validate while a misspelt
    name is still an error."""
    facts = ItemFacts("SAMPLE", "an ingredient", Decimal(0), "EUR", "each", 1, "in_stock", None)
    view = story_view(SAMPLE_STORY)

    def recipes_in_stock(limit: int = 3) -> list[Any]:
        return template_view(rank_recipes([SAMPLE_RECIPE], {"SAMPLE": facts}, limit=limit))

    return Binding(context={"story": view, "stories": [view],
                            "recipes_in_stock": recipes_in_stock})
