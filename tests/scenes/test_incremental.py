"""The incremental change path (issue #26) against its definition: for random sequences
of item changes on the demo market's displays, in every language the market offers,
`incremental.recompose` gives exactly the state the full composition gives (and so the
same hash), and its patch takes the previous state there; when it declines (None) the
caller composes the whole display, so declining is always correct, but it must not
decline an ordinary price change."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from holobazaar.canonical import state_hash
from holobazaar.content import SAMPLE_BINDINGS, load_content
from holobazaar.scenes import incremental
from holobazaar.scenes.compositor import compose_display
from holobazaar.scenes.loader import Content, sample_bindings
from holobazaar.stream.statepatch import apply_ops

from support.content import REPO

AT = datetime(2026, 6, 6, 10, 30, tzinfo=UTC)  # a Saturday morning: market hours apply


@cache
def content() -> Content:
    return load_content(REPO)


def market():
    return content().markets["greenhaven"]


def languages() -> list[str | None]:
    return [None, *market().market.market.languages[1:]]


def compose(display, items, language, at=AT):
    found = market()
    return compose_display(found.market, display, items, content().asset_refs(),
                           sample_bindings(found.market, display, SAMPLE_BINDINGS), at,
                           language=language)


def step(display, items, language, previous, changed, at=AT, previous_at=AT):
    found = market()
    return incremental.recompose(
        found.market, display, items, content().asset_refs(),
        sample_bindings(found.market, display, SAMPLE_BINDINGS), at, language, previous,
        previous_at, changed)


def change_of(facts, kind: str, value: int):
    if kind == "price":
        return replace(facts, price=Decimal(value) / 100)
    if kind == "no_price":
        return replace(facts, price=None)
    if kind == "stock":
        return replace(facts, stock=value % 500)
    if kind == "status":
        return replace(facts, status=("in_stock", "low", "sold_out")[value % 3])
    if kind == "name":
        return replace(facts, name=f"{facts.name.split(' #')[0]} #{value}")
    if kind == "notice":
        return replace(facts, notice="price at the stall" if value % 2 else None,
                       verified=bool(value % 3))
    raise AssertionError(kind)


KINDS = ("price", "price", "price", "no_price", "stock", "status", "name", "notice",
         "remove")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_incremental_equals_full_composition(data) -> None:
    found = market()
    display = data.draw(st.sampled_from(sorted(found.displays)), label="display")
    display = found.displays[display]
    language = data.draw(st.sampled_from(languages()), label="language")
    items = dict(found.seed_items())
    skus = sorted(items)
    deps = incremental.node_dependencies(display)
    bound = sorted((set(deps.display_items) | set(deps.by_item)) & set(skus)) or skus
    previous, _ = compose(display, items, language)
    sku_of = st.one_of(st.sampled_from(bound), st.sampled_from(bound), st.sampled_from(skus))
    changes = data.draw(st.lists(st.tuples(
        st.lists(sku_of, min_size=1, max_size=3, unique=True),
        st.sampled_from(KINDS), st.integers(0, 10**6)), min_size=1, max_size=6),
        label="changes")
    for changed_skus, kind, value in changes:
        for sku in changed_skus:
            if kind == "remove":
                items.pop(sku, None)
            else:
                base = items.get(sku) or found.seed_items()[sku]
                items[sku] = change_of(base, kind, value)
        full, full_errors = compose(display, items, language)
        result = step(display, items, language, previous, set(changed_skus))
        if result is not None:
            state, ops, errors = result
            assert state == full
            assert state_hash(state) == state_hash(full)
            assert apply_ops(previous, ops) == full
            assert errors == [e for e in full_errors if e.node is None
                              or e.node in incremental.node_dependencies(display)
                              .nodes_for(set(changed_skus))]
        previous = full


def test_a_price_change_recomposes_only_its_nodes_in_every_language() -> None:
    found = market()
    seed = found.seed_items()
    checked = 0
    for display in found.displays.values():
        bound = [sku for sku in display.items if sku in seed]
        if not bound:
            continue
        sku = bound[0]
        for language in languages():
            previous, _ = compose(display, seed, language)
            items = {**seed, sku: replace(seed[sku], price=Decimal("123.45"))}
            result = step(display, items, language, previous, {sku})
            assert result is not None, (display.id, language)
            state, ops, _ = result
            assert state == compose(display, items, language)[0]
            assert ops and all(op["op"] == "replace" for op in ops), ops
            assert apply_ops(previous, ops) == state
            checked += 1
    assert checked >= 3


def test_a_new_moment_that_changes_the_opening_hours_is_composed_whole() -> None:
    found = market()
    display = next(d for d in found.displays.values() if d.items)
    seed = found.seed_items()
    sku = display.items[0]
    previous, _ = compose(display, seed, None)
    items = {**seed, sku: replace(seed[sku], price=Decimal("1.00"))}
    later = datetime(2026, 6, 6, 23, 30, tzinfo=UTC)
    result = step(display, items, None, previous, {sku}, at=later)
    expected = compose(display, items, None, at=later)[0]
    assert result is None or result[0] == expected
