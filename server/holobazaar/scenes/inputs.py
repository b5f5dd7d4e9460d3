"""What the compositor composes from, besides the scene files: the facts of the items
(pushed by inventory), the stored assets and the bindings other domains provide. Plain
values, so scenes/ depends on no other domain; `ItemStore` is where the scene service
gets item facts from (holobazaar.inventory.service.InventoryItems, given by the
assembly)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from holobazaar.scenes import templates

# What a display shows instead of a price it cannot vouch for: a held change (set by the
# reconciler, holobazaar.inventory.reconciler.HELD_NOTICE), or an item with no usable price.
PRICE_AT_STALL = templates.PRICE_AT_STALL
CENTS = Decimal("0.01")


@dataclass(frozen=True)
class ItemFacts:
    """What the inventory says about one item right now."""

    sku: str
    name: str
    price: Decimal | None  # None (or not a finite amount >= 0): no price to show
    currency: str
    unit: str
    stock: int | None
    status: str
    farm: str | None
    # Set by the reconciler (inventory): a held price is replaced by `notice` ("price at
    # the stall") so nothing shown can be wrong; `verified=False` when the feed is stale.
    notice: str | None = None
    verified: bool = True

    @property
    def amount(self) -> str | None:
        """The price as a decimal string with two places, or None when there is no usable
        price (a missing, negative or non-finite one)."""
        price = self.price
        if not isinstance(price, Decimal):
            try:
                price = Decimal(str(price)) if price is not None else None
            except ArithmeticError:
                price = None
        if price is None or not price.is_finite() or price < 0:
            return None
        try:
            return str(price.quantize(CENTS))
        except ArithmeticError:  # more digits than the decimal context holds
            return None

    @property
    def shown_notice(self) -> str | None:
        """What replaces the price: the reconciler's notice, or "price at the stall" for an
        item without a usable price. None: the price is shown."""
        if self.notice is not None:
            return self.notice
        return PRICE_AT_STALL if self.amount is None else None

    def as_state(self) -> dict[str, Any]:
        amount = self.amount
        state = {
            "sku": self.sku,
            "name": self.name,
            # Prices travel as decimal strings: never floats.
            "price": amount,
            "currency": self.currency or "",
            "unit": self.unit or "",
            "stock": self.stock,
            "status": self.status,
            "farm": self.farm,
        }
        notice = self.notice if self.notice is not None else (
            PRICE_AT_STALL if amount is None else None)
        if notice is not None:
            state["price"], state["notice"] = None, notice
        if not self.verified:
            state["verified"] = False
        return state


@dataclass(frozen=True)
class LodRef:
    """One level of detail of a processed model (the asset pipeline's output)."""

    url: str
    triangles: int
    bytes: int


@dataclass(frozen=True)
class AssetRef:
    name: str
    url: str
    media_type: str
    size: int
    # Processed models: levels of detail, most detailed first (url is the first), and a
    # file with PNG/JPEG textures for clients without WebP. Empty for plain files.
    lods: tuple[LodRef, ...] = ()
    fallback: str | None = None


@dataclass(frozen=True)
class Binding:
    """Data another domain binds into a display (stories, pulse, reconciler notices...):
    `context` adds template variables (values may be plain data or pure callables such as
    `recipes_in_stock(limit=3)`); `state`, when not None, is placed in the display state
    under the binding's name so clients can render it (e.g. a story overlay)."""

    context: Mapping[str, Any]
    state: Any = None


class ItemStore(Protocol):
    """The stored item facts of a market. Blocking calls: the scene service runs them in a
    worker thread."""

    def seed(self, market: str, seed: Mapping[str, ItemFacts],
             previous: Mapping[str, ItemFacts] | None) -> None:
        """Store the items the content files define that are not stored yet (and, with
        `previous`, the seed before an edit of the files, those whose file values
        changed)."""

    def load(self, market: str) -> dict[str, ItemFacts]:
        """The market's items as displays may show them."""
