"""The reconciliation drill: scramble some displays' published states the way a faulty
display system would (through the scene service, as any publisher): wrong prices, swapped
items, flipped stock. The publish guard and the reconciler must find and repair every one."""

from __future__ import annotations

import json
import random
from collections.abc import Callable

from holobazaar.channels import display_channel
from holobazaar.inventory.guard import PriceGuard
from holobazaar.scenes.service import SceneService


async def scramble(scenes: SceneService, guard: PriceGuard, market_id: str, seed: int | None,
                   count: int | None) -> list[dict]:
    """Scramble `count` displays (default a third) of the market that show items; returns
    what was done to each and whether the guard caught it before any client saw it."""
    market = scenes.market(market_id)
    if market is None:
        raise LookupError(market_id)
    hub = scenes.hub
    rng = random.Random(seed)
    candidates = sorted(d for d in market.displays
                        if hub.has_channel(display_channel(market_id, d))
                        and hub.snapshot(display_channel(market_id, d))[2].get("items"))
    n = count if count is not None else max(1, len(candidates) // 3)
    chosen = rng.sample(candidates, min(n, len(candidates)))
    scrambled = []
    for display in chosen:
        state = json.loads(json.dumps(hub.snapshot(display_channel(market_id, display))[2]))
        skus = sorted(state["items"])
        mode = rng.choice(["price", "swap", "stock"] if len(skus) > 1 else ["price", "stock"])
        if mode == "price":
            sku = rng.choice(skus)
            item = state["items"][sku]
            item["price"] = f"{rng.randint(1, 99)}.{rng.randint(0, 99):02d}"
            item.pop("notice", None)
        elif mode == "swap":
            a, b = rng.sample(skus, 2)
            state["items"][a], state["items"][b] = state["items"][b], state["items"][a]
        else:
            sku = rng.choice(skus)
            item = state["items"][sku]
            item["status"] = "in_stock" if item["status"] == "sold_out" else "sold_out"
        before = guard.corrected
        await scenes.publish_display(market_id, display, _replace_with(state))
        # Caught by the publish guard: no client received the scrambled state.
        scrambled.append({"display": display, "mode": mode,
                          "guarded": guard.corrected > before})
    return scrambled


def _replace_with(state: dict) -> Callable[[dict], dict]:
    return lambda _shown: state
