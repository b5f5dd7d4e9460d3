"""Pulse for displays: `{{ pulse.mood }}`, `{{ pulse.most_loved(limit=3) }}` and
`{{ pulse.loves }}` in scene templates (docs/pulse.md, "Bindings").

The values come from a view refreshed at most every `interval` seconds (not from the live
windows), and displays are recomposed only when that view changed: a burst of taps makes
at most one round of patches per interval. Only the aggregator refreshes (`poke`); a node
that is not the aggregator composes with the view of the shared pulse channel, so every
node renders the same values."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from holobazaar.channels import display_channel
from holobazaar.scenes.compositor import Binding
from holobazaar.scenes.loader import MarketContent
from holobazaar.scenes.models import Display, MarketFile

log = logging.getLogger(__name__)

MAX_LIMIT = 10


class Favourites(tuple):
    """A tuple of favourites that prints as their titles: `{{ pulse.most_loved(3) }}` gives
    "Zonneveld Greens, Mill Bakery"; `{% for d in pulse.most_loved(3) %}` gives each
    {display, title, loves}."""

    def __str__(self) -> str:
        return ", ".join(f.title for f in self)


@dataclass(frozen=True)
class Favourite:
    display: str
    title: str
    loves: int

    def __str__(self) -> str:
        return self.title


@dataclass(frozen=True)
class PulseView:
    mood: int | None  # the market's mood over the last 15 minutes (k-anonymous)
    favourites: tuple[Favourite, ...]  # today's most loved displays (k-anonymous)
    loves: dict[str, int]  # today's loves per display (k-anonymous ones only)


class PulseBindings:
    """A scene BindingProvider; the service calls `poke` after every publish (its
    `add_listener`)."""

    name = "pulse"

    def __init__(self, service: Any, scenes: Any, interval: float = 5.0) -> None:
        self.service, self.scenes, self.interval = service, scenes, interval
        self.views: dict[str, PulseView] = {}
        self._last: dict[str, float] = {}
        self._busy: set[str] = set()
        self._term = 0  # the service's aggregator term the views belong to
        self.refreshes = 0

    def view_for(self, market: str) -> PulseView:
        windows = self.service.state(market)["windows"]
        content = self.scenes.market(market)
        titles = {}
        if content is not None:
            for display in content.displays.values():
                titles[display.id] = self._title(market, display.id)
        loves = {d: f["counts"]["love"] for d, f in windows["day"]["displays"].items()}
        ranked = sorted((d for d, n in loves.items() if n > 0), key=lambda d: (-loves[d], d))
        favourites = tuple(Favourite(d, titles.get(d, d), loves[d]) for d in ranked[:MAX_LIMIT])
        market_15m = windows["15m"]["market"]
        return PulseView(market_15m["mood"] if market_15m else None, favourites, loves)

    def _title(self, market: str, display: str) -> str:
        try:
            _, _, state, _ = self.scenes.hub.snapshot(display_channel(market, display))
            return str(state["display"]["title"])
        except KeyError:
            return display

    def poke(self, market: str) -> None:
        """Called after each pulse publish; refreshes displays when the throttle allows."""
        if self._term != self.service.terms:  # became the aggregator again: start afresh
            self._term = self.service.terms
            self.views.clear()
            self._last.clear()
        now = time.monotonic()
        if market in self._busy or now - self._last.get(market, -1e9) < self.interval:
            return
        self._last[market] = now
        view = self.view_for(market)
        if view == self.views.get(market):
            return
        self.views[market] = view
        self._busy.add(market)
        asyncio.get_running_loop().create_task(self._refresh(market))

    async def _refresh(self, market: str) -> None:
        try:
            self.refreshes += 1
            await self.scenes.refresh(market)
        except Exception:
            log.exception("refreshing displays of %s after a pulse change failed", market)
        finally:
            self._busy.discard(market)

    def current(self, market: str) -> PulseView:
        """The aggregator's last refreshed view; elsewhere the shared channel's."""
        view = self.views.get(market) if self.service.leading else None
        return view if view is not None else self.view_for(market)

    def binding(self, market: MarketContent, display: Display) -> Binding | None:
        return view_binding(self.current(market.id), display)


def sample_binding(market: MarketFile, display: Display) -> Binding:
    """Sample values for `holobazaar validate` (scenes.loader.SAMPLE_BINDINGS)."""
    sample = PulseView(50, (Favourite(display.id, display.id, 12),), {display.id: 12})
    return view_binding(sample, display)


def view_binding(view: PulseView, display: Display) -> Binding:
    def most_loved(limit: int = 3) -> Favourites:
        if not isinstance(limit, int) or isinstance(limit, bool):
            raise TypeError("most_loved(limit=...) takes a whole number")
        return Favourites(view.favourites[:max(0, min(limit, MAX_LIMIT))])

    # Below the k threshold a value is "" (prints nothing, is false in {% if %}).
    return Binding(context={"pulse": {
        "mood": view.mood if view.mood is not None else "",
        "loves": view.loves.get(display.id, ""),
        "most_loved": most_loved,
    }})
