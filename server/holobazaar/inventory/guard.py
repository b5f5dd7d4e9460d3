"""The publish guard: no wrong price leaves the server.

Plugged into the hub's publish path at assembly (`Hub.add_guard`, web/app.py), it checks
every display state on its way into a channel against the authoritative items (the
scene service's facts with the reconciler's overlays: a held item's notice, `verified`)
before the hub accepts it. Only the items the state carries are compared, each entry
against `ItemFacts.as_state()` of the same SKU: O(items in the state), no composing, no
I/O. A state that disagrees (a wrong price, stock or status, a swapped or unknown item, a
held item showing a number) is replaced by the compositor's state for the truth (or, for
a display the content does not know, by its own items corrected) before any client can
receive it; the mismatch is recorded in the background (kind as the reconciler's,
resolution `guarded`, audit `reconcile.mismatch` + `reconcile.guarded`).

What the guard cannot see is what happens after the hub (a client rendering something
else): the heartbeat hash catches that (`client_drift`)."""

from __future__ import annotations

import time
from collections import deque
from typing import Any, Protocol

from holobazaar.channels import display_of, language_of
from holobazaar.scenes.inputs import ItemFacts
from holobazaar.scenes.loader import MarketContent
from holobazaar.scenes.models import Display
from holobazaar.scenes.service import SceneService

RECENT_CHECKS = 4096  # durations kept for the cost percentiles (checks, corrections)


class Corrector(Protocol):
    """What the guard needs from the reconciler (which builds on this module)."""

    scenes: SceneService

    def expected_state(self, market: MarketContent, display: Display) -> dict: ...

    def note_guarded(self, market: str, display: str, expected: dict[str, Any],
                     shown: dict[str, Any]) -> None: ...


def agrees(sku: str, shown: Any, facts: ItemFacts | None) -> bool:
    return facts is not None and facts.sku == sku and shown == facts.as_state()


class PriceGuard:
    """`stream.hub.PublishGuard` for display channels (see the module's text)."""

    def __init__(self, reconciler: Corrector) -> None:
        self.reconciler = reconciler
        self.scenes = reconciler.scenes
        # This node's figures (the recorded mismatches are the cluster's, in the database).
        self.checks = 0  # display states checked
        self.items_checked = 0
        self.corrected = 0  # states that disagreed and were replaced
        self.seconds = 0.0  # time spent checking (and correcting)
        # Durations of checks that found the state right (the change path's cost) and of
        # checks that corrected it (composing the truth's state: only when it is wrong).
        self.recent: deque[float] = deque(maxlen=RECENT_CHECKS)
        self.recent_corrections: deque[float] = deque(maxlen=RECENT_CHECKS)

    def check(self, channel: str, state: dict) -> dict:
        where = display_of(channel)
        if where is None:
            return state
        items = state.get("items") if isinstance(state, dict) else None
        truth = self.scenes.items.get(where[0])
        if not isinstance(items, dict) or not items or truth is None:
            return state
        started = time.perf_counter()
        wrong = [sku for sku, shown in items.items() if not agrees(sku, shown, truth.get(sku))]
        if wrong:
            state = self._correct(where[0], where[1], state, wrong, truth,
                                  language_of(channel))
        elapsed = time.perf_counter() - started
        self.checks += 1
        self.items_checked += len(items)
        self.seconds += elapsed
        (self.recent_corrections if wrong else self.recent).append(elapsed)
        return state

    def _correct(self, market_id: str, display_id: str, state: dict, wrong: list[str],
                 truth: dict[str, ItemFacts], language: str | None = None) -> dict:
        market = self.scenes.market(market_id)
        display = market.displays.get(display_id) if market is not None else None
        if market is not None and display is not None and language is None:
            fixed = self.reconciler.expected_state(market, display)
        else:  # a language channel, or not a display of the content: keep its layout
            # (and language), put the truth in
            fixed = {**state, "items": {sku: truth[sku].as_state()
                                        for sku in state["items"] if sku in truth}}
        shown = {sku: state["items"][sku] for sku in wrong}
        expected = {sku: fixed["items"][sku] for sku in wrong if sku in fixed["items"]}
        self.corrected += 1
        self.reconciler.note_guarded(market_id, display_id, expected, shown)
        return fixed
