"""The incremental change path (issue #26): when items change, recompose only the nodes
of a display that depend on them and produce the JSON Patch from those nodes alone,
instead of composing every node and diffing the whole state.

The compositor's full composition (compositor.compose_display) stays the definition:
`recompose` returns exactly what it would (tests/scenes/test_incremental.py checks state,
patch and hash against it for random changes, in every language), or None when it
cannot be sure and the caller composes the whole display.

Which nodes depend on which items (the dependency index, `node_dependencies`):
- a node bound to an item (`item:`) depends on that item;
- a node whose text (any field, translation or variant override) mentions `item` can
  read the display's item list (`items`, `item`): it depends on the display's items;
- everything outside the nodes (title, description, farm, items, bindings) is always
  composed again (it is small), so it needs no index.
Falls back (None) when a changed item appeared or disappeared, when a binding provider
reads a changed item, and when the time being composed for changes anything the time
decides (variant, opening hours)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from datetime import datetime
from typing import Any

from holobazaar.scenes import schedule
from holobazaar.scenes.compositor import compose_display
from holobazaar.scenes.inputs import AssetRef, Binding, ItemFacts
from holobazaar.scenes.models import Display, MarketFile, iter_nodes
from holobazaar.stream.statepatch import _diff, _escape

ITEM_WORD = "item"  # `item` and `items` in a template both contain it


class Dependencies:
    """A display's nodes by the items they depend on."""

    def __init__(self, display: Display) -> None:
        self.by_item: dict[str, set[str]] = {}
        self.on_display_items: set[str] = set()
        overrides: dict[str, list[Any]] = {}
        for variant in display.variants:
            for node_id, override in variant.nodes.items():
                overrides.setdefault(node_id, []).append(override)
        for node, _ in iter_nodes(display.nodes):
            for override in [node.model_dump(include={"item"}), *overrides.get(node.id, [])]:
                item = override.get("item")
                if isinstance(item, str):  # its own item, or one a variant binds it to
                    self.by_item.setdefault(item, set()).add(node.id)
            texts = node.model_dump_json(exclude={"children", "item"}) + json.dumps(
                overrides.get(node.id, []), default=str)
            if ITEM_WORD in texts:
                self.on_display_items.add(node.id)
        self.display_items = frozenset(display.items)

    def nodes_for(self, changed: AbstractSet[str]) -> set[str]:
        nodes: set[str] = set()
        for sku in changed:
            nodes |= self.by_item.get(sku, set())
        if self.display_items & changed:
            nodes |= self.on_display_items
        return nodes


_INDEX: dict[int, tuple[Display, Dependencies]] = {}


def node_dependencies(display: Display) -> Dependencies:
    """The display's dependency index, made once per loaded display."""
    found = _INDEX.get(id(display))
    if found is None or found[0] is not display:
        if len(_INDEX) > 4096:
            _INDEX.clear()
        found = _INDEX[id(display)] = (display, Dependencies(display))
    return found[1]


def time_key(market: MarketFile, display: Display, at: datetime | None) -> Any:
    """What the time decides in a display's state: the variant in force and the opening
    hours as templates see them."""
    if at is None:
        return None
    tz = schedule.zone(market.market.timezone)
    hours = schedule.hours_at(market.hours, tz, at)
    variant = (schedule.variant_at(display.schedule, at, tz, hours.open if hours else True)
               if display.schedule else None)
    return (variant, hours.template(at, tz) if hours is not None else None,
            hours.state(tz) if hours is not None and market.hours is not None else None)


def recompose(market: MarketFile, display: Display, items: Mapping[str, ItemFacts],
              assets: Mapping[str, AssetRef], bindings: Mapping[str, Binding],
              at: datetime | None, language: str | None, previous: dict[str, Any],
              previous_at: datetime | None, changed: AbstractSet[str],
              binding_items: AbstractSet[str] = frozenset(),
              ) -> tuple[dict[str, Any], list[dict], list] | None:
    """The display's state after `changed` items changed, from `previous` (its full
    composition at `previous_at` with the items as they were), with the JSON Patch from
    `previous` to it and the compositor's binding errors; None: compose it whole.
    `binding_items`: the items the binding providers read for this display."""
    if changed & binding_items:
        return None
    old_items = previous.get("items")
    old_nodes = previous.get("nodes")
    if not isinstance(old_items, dict) or not isinstance(old_nodes, dict):
        return None
    deps = node_dependencies(display)
    for sku in changed:
        bound = sku in deps.display_items or sku in deps.by_item
        if bound and (sku in items) != (sku in old_items):
            return None  # an item appeared or went: visibility and errors change
    if previous_at != at and time_key(market, display, previous_at) != time_key(
            market, display, at):
        return None
    only = deps.nodes_for(changed)
    if not only <= old_nodes.keys():
        return None
    partial, errors = compose_display(market, display, items, assets, bindings, at,
                                      language=language, only=only)
    new_nodes = partial["nodes"]
    nodes = {node_id: new_nodes.get(node_id, value) for node_id, value in old_nodes.items()}
    state = {**partial, "nodes": nodes}
    ops: list[dict] = []
    for key in previous:
        if key not in state:
            ops.append({"op": "remove", "path": f"/{_escape(key)}"})
    for key, value in state.items():
        if key not in previous:
            ops.append({"op": "add", "path": f"/{_escape(key)}", "value": value})
        elif key == "nodes":
            for node_id in old_nodes:
                if node_id in only:
                    _diff(old_nodes[node_id], nodes[node_id], f"/nodes/{_escape(node_id)}",
                          ops)
        else:
            _diff(previous[key], value, f"/{_escape(key)}", ops)
    return state, ops, errors
