"""The story provider's bindings are kept while their inputs are the same (every display
is composed per change and language; a binding renders its stories' Markdown), and are
made again as soon as a stock that can re-rank the display's recipes changes."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from holobazaar.scenes.inputs import ItemFacts
from holobazaar.scenes.models import Display
from holobazaar.stories.bindings import MarketStories, StoryBindings
from holobazaar.stories.schema import RecipeDoc
from stories.helpers import MARKET, recipe

MARKET_CONTENT: Any = SimpleNamespace(id=MARKET)


def facts(sku: str, stock: int = 5) -> ItemFacts:
    return ItemFacts(sku, sku.lower(), Decimal("2.50"), "EUR", "each", stock, "in_stock", None)


def display(display_id: str, items: list[str]) -> Display:
    return Display(id=display_id, zone="z", title="Stall", items=items,
                   nodes=[{"id": "t", "kind": "text", "text": "{{ recipes_in_stock() }}"}])


def provider(items: dict[str, ItemFacts]) -> StoryBindings:
    bindings = StoryBindings(engine=None, items=lambda market: items)  # type: ignore[arg-type]
    bindings.markets[MARKET] = MarketStories(recipes=[
        RecipeDoc(market=MARKET, **recipe("soup", ["LEEK", "POTATO"])),
        RecipeDoc(market=MARKET, **recipe("jam", ["PLUM"]))])
    return bindings


def recipes_shown(bindings: StoryBindings, shown: Display) -> list[str]:
    state = bindings.binding(MARKET_CONTENT, shown).state  # type: ignore[union-attr]
    return [r["slug"] for r in state["recipes"]] if state else []


def test_a_binding_is_kept_until_a_linked_stock_changes() -> None:
    items = {sku: facts(sku) for sku in ("LEEK", "POTATO", "PLUM", "HONEY")}
    bindings = provider(items)
    leeks = display("leeks", ["LEEK"])
    first = bindings.binding(MARKET_CONTENT, leeks)
    assert bindings.binding(MARKET_CONTENT, leeks) is first
    items["HONEY"] = replace(items["HONEY"], price=Decimal("9"))  # in no recipe
    assert bindings.binding(MARKET_CONTENT, leeks) is first
    items["POTATO"] = replace(items["POTATO"], stock=0)  # in the leek soup
    again = bindings.binding(MARKET_CONTENT, leeks)
    assert again is not first
    assert again.state["recipes"][0]["in_stock"] == ["LEEK"]  # type: ignore[index]
    assert bindings.items_of(MARKET_CONTENT, leeks) == {"LEEK", "POTATO"}


def test_a_display_without_items_follows_every_recipes_stock() -> None:
    items = {sku: facts(sku) for sku in ("LEEK", "POTATO", "PLUM")}
    bindings = provider(items)
    board = display("recipe-board", [])
    assert bindings.items_of(MARKET_CONTENT, board) == {"LEEK", "POTATO", "PLUM"}
    assert recipes_shown(bindings, board) == ["soup", "jam"]
    items["PLUM"] = replace(items["PLUM"], stock=0)
    assert recipes_shown(bindings, board) == ["soup"]


def test_a_new_cache_makes_new_bindings() -> None:
    items = {sku: facts(sku) for sku in ("LEEK", "POTATO", "PLUM")}
    bindings = provider(items)
    plums = display("plums", ["PLUM"])
    assert recipes_shown(bindings, plums) == ["jam"]
    bindings.markets[MARKET] = MarketStories()  # the recipes were unpublished (a reload)
    assert recipes_shown(bindings, plums) == []
    assert bindings.items_of(MARKET_CONTENT, plums) == set()


def test_a_reloaded_display_takes_its_old_entry_s_place() -> None:
    items = {sku: facts(sku) for sku in ("LEEK", "POTATO", "PLUM")}
    bindings = provider(items)
    assert recipes_shown(bindings, display("stall", ["PLUM"])) == ["jam"]
    changed = display("stall", ["LEEK"])  # the same display after a content reload
    assert recipes_shown(bindings, changed) == ["soup"]
    assert bindings.items_of(MARKET_CONTENT, changed) == {"LEEK", "POTATO"}
    assert len(bindings._linked) == len(bindings._bindings) == 1
