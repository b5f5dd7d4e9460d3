"""The compositor: scene + bound data -> plain JSON display state, one per channel.

Pure functions of their inputs: the same scene and facts give the same state, byte for
byte once canonicalised, so a state's hash identifies it (see holobazaar.canonical).
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from holobazaar import i18n
from holobazaar.scenes import schedule, templates
from holobazaar.scenes.inputs import AssetRef, Binding, ItemFacts
from holobazaar.scenes.inputs import LodRef as LodRef  # re-exported: its home is inputs
from holobazaar.scenes.models import (
    Display,
    Farm,
    GroupNode,
    ImageNode,
    LightNode,
    MarketFile,
    ModelNode,
    PanelNode,
    TextNode,
    iter_nodes,
    translated,
)

STATE_VERSION = 1


@dataclass(frozen=True)
class BindingError:
    node: str | None  # None: the display's own title/description
    field: str
    message: str


def template_view(value: Any) -> Any:
    """Dicts become attribute-only namespaces for templates: `item.price` works, a misspelt
    `item.prize` is an undefined name (an error), and no dict method leaks into output."""
    if isinstance(value, dict):
        return SimpleNamespace(**{k: template_view(v) for k, v in value.items()})
    if isinstance(value, list):
        return [template_view(v) for v in value]
    return value


_ITEM_VIEWS: dict[tuple[ItemFacts, int, str | None], tuple[Farm | None, SimpleNamespace]] = {}
_ITEM_VIEWS_MAX = 16384


def _template_item(facts: ItemFacts, farms: Mapping[str, Farm],
                   language: str | None = None) -> SimpleNamespace:
    """The item as templates see it: a pure function of the facts, the item's farm and the
    language, so kept (formatting prices the language's way is the costly part of
    composing). Templates cannot change it (the sandbox refuses)."""
    farm = farms.get(facts.farm) if facts.farm else None
    key = (facts, id(farm), language)
    found = _ITEM_VIEWS.get(key)
    if found is not None and found[0] is farm:
        return found[1]
    view = _make_template_item(facts, farm, language)
    if len(_ITEM_VIEWS) >= _ITEM_VIEWS_MAX:
        _ITEM_VIEWS.clear()
    _ITEM_VIEWS[key] = (farm, view)
    return view


def _make_template_item(facts: ItemFacts, farm: Farm | None,
                        language: str | None) -> SimpleNamespace:
    notice = facts.shown_notice
    if notice is not None:  # never the old or the new value of a held price
        price = amount = notice
        if language:
            price = amount = i18n.gettext(language, notice)
    else:
        amount = facts.amount or ""
        price = templates.money(amount, facts.currency, language)
        if not facts.verified:
            price = (i18n.gettext(language, "%(price)s (unverified)", price=price) if language
                     else f"{price} (unverified)")
    status_label = templates.stock_label(facts.status)
    return template_view(dict(
        sku=facts.sku,
        name=facts.name,
        price=price,
        amount=amount,
        currency=facts.currency or "",
        unit=facts.unit or "",
        stock=facts.stock,
        status=facts.status,
        status_label=i18n.gettext(language, status_label) if language else status_label,
        farm=farm_view(farm, language) if farm else None,
    ))


def farm_view(farm: Farm, language: str | None) -> dict[str, Any]:
    """The farm's fields in `language` (each translated field, else as written)."""
    data = farm.model_dump(exclude={"translations"})
    for field in ("location", "description"):
        data[field] = translated(farm, field, language)
    return data


def _farm_state(farm: Farm, assets: Mapping[str, AssetRef],
                language: str | None = None) -> dict[str, Any]:
    """The farm as a display's state carries it: its photos with their URLs (a photo whose
    image is not among the market's assets is left out)."""
    data = farm_view(farm, language)
    data["photos"] = [{"asset": p.asset, "alt": p.alt, "url": assets[p.asset].url}
                      for p in farm.photos if p.asset in assets]
    return data


def compose_display(
    market: MarketFile,
    display: Display,
    items: Mapping[str, ItemFacts],
    assets: Mapping[str, AssetRef],
    bindings: Mapping[str, Binding] | None = None,
    at: datetime | None = None,
    variant: str | None = None,
    language: str | None = None,
    only: AbstractSet[str] | None = None,
) -> tuple[dict[str, Any], list[BindingError]]:
    """The display's state. `bindings` (by name) come from the other domains' binding
    providers; composing stays a pure function of all its arguments. `at` (the time
    being composed for) picks the variant the display's schedule puts in force and the
    market's open state; `variant` forces one (validation renders each). `language`
    (one of the market's other languages) composes the state of the display's channel
    for that language: each text field's translation, else the text as written, prices
    and labels the language's way; None: the market's default language. `only`: compose
    just these nodes (`nodes` holds only them; everything else is complete): the scene
    service's incremental path (scenes/incremental.py), checked against the whole."""
    bindings = bindings or {}
    if language == market.market.language:
        language = None
    tz = schedule.zone(market.market.timezone)
    hours = schedule.hours_at(market.hours, tz, at) if at is not None else None
    if variant is None and at is not None and display.schedule:
        variant = schedule.variant_at(display.schedule, at, tz, hours.open if hours else True)
    chosen = next((v for v in display.variants if v.id == variant), None)
    overrides = chosen.nodes if chosen else {}
    title = (chosen.title if chosen and chosen.title is not None
             else translated(display, "title", language))
    description = (chosen.description if chosen and chosen.description is not None
                   else translated(display, "description", language))
    farms = {f.id: f for f in market.farms}
    farm = farms.get(display.farm) if display.farm else None
    errors: list[BindingError] = []
    display_items = [items[sku] for sku in display.items if sku in items]
    opening = hours.template(at, tz) if hours is not None and at is not None else {
        "open": True, "opens_at": None, "closes_at": None, "opens_in": None,
        "closes_in": None}
    base_context = {
        "market": template_view({**market.market.model_dump(exclude={"translations"}),
                                 "name": translated(market.market, "name", language),
                                 "description": translated(market.market, "description",
                                                           language),
                                 "language": language or market.market.language,
                                 **opening}),
        "display": template_view({"id": display.id, "zone": display.zone}),
        "farm": template_view(farm_view(farm, language)) if farm else None,
        "items": [_template_item(i, farms, language) for i in display_items],
        "item": _template_item(display_items[0], farms, language) if display_items else None,
    }
    for name in sorted(bindings):
        base_context.update(
            {k: template_view(v) if isinstance(v, dict | list) else v
             for k, v in bindings[name].context.items()})

    def render(text: str, context: dict | None, node: str | None, field: str,
               source: Any = None) -> str:
        """`text` rendered; with `source` (a node or the display) and a language: its
        translation of `field` instead, falling back to `text` when the translation
        renders empty (never an empty field where the default language says something)."""
        if source is not None and language is not None and field not in overridden:
            other = translated(source, field, language)
            if other != text:
                shown = render(other, context, node, field)
                if shown.strip() or not text.strip():
                    return shown
        if context is None:  # a node of a removed item: hidden, nothing to render
            return ""
        try:
            return templates.render(text, context)
        except templates.TemplateError as exc:
            errors.append(BindingError(node, field, f"cannot render: {exc}"))
            return ""
        except (ArithmeticError, ValueError, TypeError) as exc:
            errors.append(BindingError(node, field, f"cannot render: {exc}"))
            return ""

    bound_skus = set(display.items)
    nodes: dict[str, dict[str, Any]] = {}
    # Fields a variant replaces: the variant's text wins over the node's translations.
    display_overridden = {f for f in ("title", "description")
                          if chosen is not None and getattr(chosen, f) is not None}
    overridden: set[str] = display_overridden
    for order, (node, parent) in enumerate(iter_nodes(display.nodes)):
        if only is not None and node.id not in only:
            item = (overrides[node.id].get("item", node.item) if node.id in overrides
                    else node.item)
            if isinstance(item, str):
                bound_skus.add(item)
            continue
        overridden = set()
        if node.id in overrides:
            node = schedule.apply_override(node, overrides[node.id])
            overridden = set(overrides[node.id]) - {"translations"}
        context: dict[str, Any] | None = base_context
        visible = node.visible
        if node.item is not None:
            bound_skus.add(node.item)
            facts = items.get(node.item)
            if facts is None:
                errors.append(BindingError(node.id, "item", f"unknown item {node.item!r}"))
                context = None
                visible = False  # a removed (or unknown) item is not on show at all
            else:
                node_farm = farms.get(facts.farm) if facts.farm else farm
                context = {
                    **base_context,
                    "item": _template_item(facts, farms, language),
                    "farm": template_view(farm_view(node_farm, language)) if node_farm
                    else base_context["farm"],
                }
        state: dict[str, Any] = {
            "kind": node.kind,
            "parent": parent,
            "order": order,
            "position": list(node.position),
            "rotation": list(node.rotation),
            "scale": list(node.scale) if isinstance(node.scale, tuple) else [node.scale] * 3,
            "visible": visible,
            "item": node.item,
        }
        if isinstance(node, ModelNode):
            asset = assets.get(node.asset)
            state.update(
                asset=node.asset,
                src=asset.url if asset else None,
                label=render(node.label, context, node.id, "label", node),
            )
            if asset is not None and asset.lods:
                # One state for every client: each picks its level by device class.
                state.update(
                    lods=[{"src": lod.url, "triangles": lod.triangles, "bytes": lod.bytes}
                          for lod in asset.lods],
                    fallback=asset.fallback,
                )
        elif isinstance(node, TextNode):
            state.update(
                text=render(node.text, context, node.id, "text", node),
                size=node.size,
                color=node.color,
                align=node.align,
                max_width=node.max_width,
            )
        elif isinstance(node, ImageNode):
            asset = assets.get(node.asset)
            state.update(
                asset=node.asset,
                src=asset.url if asset else None,
                width=node.width,
                alt=render(node.alt, context, node.id, "alt", node),
            )
        elif isinstance(node, PanelNode):
            state.update(
                title=render(node.title, context, node.id, "title", node),
                body=render(node.body, context, node.id, "body", node),
                width=node.width,
                height=node.height,
                color=node.color,
                opacity=node.opacity,
            )
        elif isinstance(node, LightNode):
            state.update(light=node.light, color=node.color, intensity=node.intensity)
        elif isinstance(node, GroupNode):
            pass
        nodes[node.id] = state

    overridden = display_overridden
    state = {
        "v": STATE_VERSION,
        "market": market.market.id,
        "zone": display.zone,
        "display": {
            "id": display.id,
            "title": render(title, base_context, None, "title", display),
            "description": render(description, base_context, None, "description", display),
            "anchor": display.anchor.model_dump(),
        },
        "farm": _farm_state(farm, assets, language) if farm else None,
        "items": {sku: items[sku].as_state() for sku in sorted(bound_skus) if sku in items},
        "nodes": nodes,
    }
    if hours is not None and market.hours is not None:
        state["hours"] = hours.state(tz)
    if at is not None and display.schedule:
        state["schedule"] = {"variant": chosen.id if chosen else None}
    if language is not None:
        state["language"] = language
    for name in sorted(bindings):
        if bindings[name].state is not None:
            state.setdefault("bindings", {})[name] = bindings[name].state
    return state, errors


def compose_market(market: MarketFile, displays: Mapping[str, Display],
                   titles: Mapping[str, str], at: datetime | None = None) -> dict[str, Any]:
    info = market.market.model_dump(exclude={"translations", "languages"})
    if at is not None and market.hours is not None:
        tz = schedule.zone(market.market.timezone)
        info.update(schedule.hours_at(market.hours, tz, at).state(tz))
    return {
        "v": STATE_VERSION,
        "market": info,
        "zones": {
            z.id: {
                "name": z.name,
                "description": z.description,
                "displays": sorted(d.id for d in displays.values() if d.zone == z.id),
            }
            for z in market.zones
        },
        "displays": {
            d.id: {"zone": d.zone, "farm": d.farm, "anchor": d.anchor.kind,
                   "title": titles.get(d.id, d.id)}
            for d in displays.values()
        },
    }


def compose_zone(market: MarketFile, zone_id: str, displays: Mapping[str, Display]) -> dict:
    zone = next(z for z in market.zones if z.id == zone_id)
    return {
        "v": STATE_VERSION,
        "market": market.market.id,
        "zone": {"id": zone.id, "name": zone.name, "description": zone.description},
        "displays": sorted(d.id for d in displays.values() if d.zone == zone_id),
        "show": None,
    }
