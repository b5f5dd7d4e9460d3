"""Mismatch records: what the reconciler found, named (`classify`), written to the database
with their audit entries, and read back as the figures curators see (open mismatches by
kind, time to correct, held changes, feed lag). Plain functions over an engine or a
session; the reconciler decides when to call them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, get_args

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from holobazaar.audit import service as audit
from holobazaar.db import as_utc, session_scope
from holobazaar.inventory.tables import FeedConfig, HeldChange, Mismatch
from holobazaar.scenes.loader import MarketContent

MismatchKind = Literal["price", "stock", "identity", "stale", "client_drift"]
KINDS: tuple[MismatchKind, ...] = get_args(MismatchKind)
RECENT_CORRECTIONS = 2000  # resolved mismatches the time-to-correct percentiles cover
# The reconciler's open mismatches: (market, display, sku, kind) -> row id.
OpenKey = tuple[str, str, str | None, str]


@dataclass
class Found:
    display: str
    sku: str | None
    kind: str
    expected: Any
    shown: Any
    fixable: bool = True  # False: publishing cannot fix it (the binding names no item)


def classify(display: str, expected: dict, shown: dict) -> list[Found]:
    """Name what differs between the expected and the shown state, item by item."""
    found: list[Found] = []
    want, have = expected.get("items", {}), shown.get("items", {}) or {}
    for sku in sorted(set(want) | set(have)):
        e, s = want.get(sku), have.get(sku)
        if e == s:
            continue
        if e is None or s is None or not isinstance(s, dict) or s.get("sku") != sku \
                or s.get("name") != e.get("name"):
            found.append(Found(display, sku, "identity", e, s))
        elif (s.get("price"), s.get("notice"), s.get("currency")) != (
                e.get("price"), e.get("notice"), e.get("currency")):
            found.append(Found(display, sku, "price", e, s))
        elif (s.get("status"), s.get("stock")) != (e.get("status"), e.get("stock")):
            found.append(Found(display, sku, "stock", e, s))
        elif s.get("verified", True) != e.get("verified", True):
            found.append(Found(display, sku, "stale", e, s))
        else:
            found.append(Found(display, sku, "price", e, s))
    if not found:
        # Items agree but something else (node text, labels) does not: the display does not
        # show what its bindings imply.
        found.append(Found(display, None, "identity", {"nodes": "as composed"},
                           {"nodes": "differs"}))
    return found


# ---- writing ------------------------------------------------------------------------

def add_mismatch(session: Session, market: str, f: Found, detected: datetime,
                 resolved: datetime | None, resolution: str | None) -> int:
    """One mismatch record and its `reconcile.mismatch` audit entry; returns its id."""
    row = Mismatch(market=market, display=f.display, sku=f.sku, kind=f.kind,
                   expected=json.dumps(f.expected, default=str),
                   shown=json.dumps(f.shown, default=str), detected_at=detected,
                   resolved_at=resolved, resolution=resolution)
    session.add(row)
    session.flush()
    audit.append(session, "reconciler", "reconcile.mismatch", market, {
        "mismatch": row.id, "display": f.display, "sku": f.sku, "kind": f.kind,
        "expected": json.loads(row.expected), "shown": json.loads(row.shown)})
    return row.id or 0


def write_findings(engine: Engine, market: str, found: list[Found],
                   corrected: list[tuple[str, int]], resolved_identity: list[tuple[str, str]],
                   open_rows: dict[OpenKey, int], detected: datetime,
                   fixed: set[str]) -> list[int]:
    """A check's findings in one transaction: a row per mismatch (resolved at once when its
    display is in `fixed`), an audit entry per correction, and the identity mismatches
    that resolved themselves (their item is known again). Returns the new rows' ids."""
    ids: list[int] = []
    with session_scope(engine) as session:
        now = datetime.now(UTC)
        for f in found:
            is_fixed = f.fixable and f.display in fixed
            ids.append(add_mismatch(session, market, f, detected, now if is_fixed else None,
                                    "corrected" if is_fixed else None))
        for display, offset in corrected:
            audit.append(session, "reconciler", "reconcile.correction", market,
                         {"display": display, "offset": offset})
        for display, sku in resolved_identity:
            row_id = open_rows.get((market, display, sku, "identity"))
            row = session.get(Mismatch, row_id) if row_id else None
            if row is not None:
                row.resolved_at, row.resolution = now, "item known again"
                session.add(row)
                audit.append(session, "reconciler", "reconcile.resolved", market,
                             {"mismatch": row.id, "resolution": row.resolution})
    return ids


def write_stale(engine: Engine, market: MarketContent, now_stale: bool,
                open_rows: dict[OpenKey, int], last_feed_at: datetime | None,
                stale_after: float, now: datetime) -> int:
    """The market's feed went silent (`now_stale`) or resumed: open a `stale` mismatch per
    display, or resolve them; `open_rows` is updated in place. Returns how many opened."""
    opened = 0
    with session_scope(engine) as session:
        for display in sorted(market.displays):
            key = (market.id, display, None, "stale")
            if now_stale and key not in open_rows:
                row = Mismatch(market=market.id, display=display, kind="stale",
                               expected=json.dumps({"fed_within_s": stale_after}),
                               shown=json.dumps({"last_feed_at": str(last_feed_at)}),
                               detected_at=now)
                session.add(row)
                session.flush()
                open_rows[key] = row.id or 0
                opened += 1
            elif not now_stale and key in open_rows:
                resolved = session.get(Mismatch, open_rows.pop(key))
                if resolved is not None:
                    resolved.resolved_at, resolved.resolution = now, "feed resumed"
                    session.add(resolved)
        audit.append(session, "reconciler",
                     "reconcile.unverified" if now_stale else "reconcile.verified",
                     market.id, {"last_feed_at": str(last_feed_at), "ttl_s": stale_after})
    return opened


def write_guarded(engine: Engine, batch: list[tuple[str, list[Found], datetime]]) -> None:
    """What the publish guard replaced before any client saw it: resolved when detected."""
    with session_scope(engine) as session:
        for market, found, detected in batch:
            rows = [add_mismatch(session, market, f, detected, detected, "guarded")
                    for f in found]
            audit.append(session, "reconciler", "reconcile.guarded", market, {
                "display": found[0].display, "mismatches": rows,
                "skus": sorted({f.sku for f in found if f.sku})})


def open_mismatches(engine: Engine) -> dict[OpenKey, int]:
    with session_scope(engine) as session:
        return {(row.market, row.display, row.sku, row.kind): row.id or 0
                for row in session.exec(select(Mismatch).where(
                    col(Mismatch.resolved_at).is_(None)))}


# ---- figures ------------------------------------------------------------------------

def percentiles(times: list[float]) -> dict[str, float | None]:
    values = sorted(times)
    if not values:
        return {"p50": None, "p90": None, "p99": None}

    def pick(q: float) -> float:
        return values[min(len(values) - 1, int(q * len(values)))]

    return {"p50": pick(0.5), "p90": pick(0.9), "p99": pick(0.99)}


def correction_times(session: Session, market: str | None) -> list[float]:
    """Seconds from detection to correction of the recent resolved mismatches."""
    query = select(Mismatch.detected_at, Mismatch.resolved_at).where(
        col(Mismatch.resolution).in_(["corrected", "feed resumed"]))
    if market is not None:
        query = query.where(Mismatch.market == market)
    rows = session.exec(query.order_by(col(Mismatch.id).desc()).limit(RECENT_CORRECTIONS))
    return [(as_utc(resolved) - as_utc(detected)).total_seconds()
            for detected, resolved in rows if detected is not None and resolved is not None]


def read_figures(engine: Engine, markets: list[str]) -> dict[str, dict[str, Any]]:
    """Per market: mismatches detected and open by kind, corrected and guarded counts,
    open held changes, the feed row and the recent correction times."""
    out: dict[str, dict[str, Any]] = {
        m: {"open": dict.fromkeys(KINDS, 0), "detected": dict.fromkeys(KINDS, 0),
            "corrected": 0, "guarded": 0, "held": 0, "feed": None, "times": []}
        for m in markets}
    with session_scope(engine) as session:
        grouped = select(Mismatch.market, Mismatch.kind, func.count()).where(
            col(Mismatch.market).in_(markets)).group_by(Mismatch.market, Mismatch.kind)
        for market, kind, n in session.exec(grouped):
            out[market]["detected"][kind] = n
        for market, kind, n in session.exec(grouped.where(
                col(Mismatch.resolved_at).is_(None))):
            out[market]["open"][kind] = n
        for market, resolution, n in session.exec(
                select(Mismatch.market, Mismatch.resolution, func.count()).where(
                    col(Mismatch.market).in_(markets),
                    col(Mismatch.resolution).in_(["corrected", "guarded"])).group_by(
                        col(Mismatch.market), col(Mismatch.resolution))):
            if resolution is not None:  # always: the query asks for two values
                out[market][resolution] = n
        for market, n in session.exec(
                select(HeldChange.market, func.count()).where(
                    col(HeldChange.market).in_(markets),
                    col(HeldChange.decision).is_(None)).group_by(HeldChange.market)):
            out[market]["held"] = n
        for feed in session.exec(select(FeedConfig).where(
                col(FeedConfig.market).in_(markets))):
            out[feed.market]["feed"] = feed
            session.expunge(feed)
        for market in markets:
            out[market]["times"] = correction_times(session, market)
    return out


def summary(market_id: str, found: dict[str, Any], displays: int, shared: dict[str, float],
            now: datetime) -> dict[str, Any]:
    """What curators see for a market (`found`: its part of `read_figures`; `shared`: the
    cluster's figures), the same on every node."""
    last = as_utc(found["feed"].last_feed_at) if found["feed"] else None
    return {
        "market": market_id,
        "open_mismatches": found["open"],
        "time_to_correct_seconds": percentiles(found["times"]),
        "held_changes": found["held"],
        # One open `stale` mismatch per display marked unverified.
        "displays_unverified": found["open"]["stale"],
        "displays": displays,
        "feed_lag_seconds": (now - last).total_seconds() if last else None,
        "last_sweep_seconds": shared.get("last_sweep_seconds", 0.0),
        "counts": {"detected": sum(found["detected"].values()),
                   "corrected": found["corrected"], "guarded": found["guarded"],
                   **{name: int(shared.get(name, 0))
                      for name in ("sweeps", "feed_failures", "batches")}},
        "detected_by_kind": found["detected"],
    }
