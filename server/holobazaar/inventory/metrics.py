"""Prometheus figures of the reconciler: open mismatches by kind, time to correct, held
changes, unverified displays, feed lag and failures."""

from __future__ import annotations

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily

from holobazaar.inventory.mismatches import KINDS, percentiles
from holobazaar.inventory.reconciler import Reconciler


class ReconcileCollector:
    """Every figure comes from the reconciler's summaries (the shared database and figures),
    read by `prepare` before collecting: each node of a cluster reports the same values
    (take any node's, do not sum them)."""

    def __init__(self, reconciler: Reconciler, poller) -> None:
        self.reconciler = reconciler
        self.poller = poller
        self.summaries: dict[str, dict] = {}
        self.times: list[float] = []
        self.shared: dict[str, float] = {}

    async def prepare(self) -> None:
        self.summaries = await self.reconciler.summaries(
            sorted(m.id for m in self.reconciler.markets()))
        self.times = await self.reconciler.correction_times()
        self.shared = await self.reconciler.figures.read()

    def collect(self):
        summaries = self.summaries
        open_ = GaugeMetricFamily("holobazaar_reconcile_open_mismatches",
                                  "Open display mismatches", labels=["market", "kind"])
        detected = CounterMetricFamily("holobazaar_reconcile_mismatches",
                                       "Mismatches detected", labels=["kind"])
        ttc = GaugeMetricFamily("holobazaar_reconcile_time_to_correct_seconds",
                                "Time from detection to correction (recent)",
                                labels=["quantile"])
        held = GaugeMetricFamily("holobazaar_inventory_held_changes",
                                 "Changes held for a curator", labels=["market"])
        unverified = GaugeMetricFamily("holobazaar_displays_unverified",
                                       "Displays marked unverified (stale feed)",
                                       labels=["market"])
        lag = GaugeMetricFamily("holobazaar_inventory_feed_lag_seconds",
                                "Seconds since the last accepted feed batch", labels=["market"])
        by_kind = dict.fromkeys(KINDS, 0)
        for market, summary in sorted(summaries.items()):
            for kind, n in summary["open_mismatches"].items():
                open_.add_metric([market, kind], n)
            for kind, n in summary["detected_by_kind"].items():
                by_kind[kind] += n
            held.add_metric([market], summary["held_changes"])
            unverified.add_metric([market], summary["displays_unverified"])
            if summary["feed_lag_seconds"] is not None:
                lag.add_metric([market], summary["feed_lag_seconds"])
        for kind, n in by_kind.items():
            detected.add_metric([kind], n)
        for name, value in percentiles(self.times).items():
            if value is not None:
                ttc.add_metric([name[1:]], value)
        yield from (open_, detected, ttc, held, unverified, lag)
        counts = CounterMetricFamily("holobazaar_reconcile", "Reconciler counters",
                                     labels=["counter"])
        totals = {name: int(self.shared.get(name, 0))
                  for name in ("sweeps", "feed_failures", "batches", "pull_polls")}
        for summary in summaries.values():  # the database's, per market
            for key in ("detected", "corrected", "guarded"):
                totals[key] = totals.get(key, 0) + summary["counts"][key]
        for key, value in sorted(totals.items()):
            counts.add_metric([key], value)
        yield counts
        # Signed feed requests (feed_routes.push_events): form v2 or v1 (the old form,
        # accepted during its grace period), outcome accepted, replayed or refused.
        signatures = CounterMetricFamily(
            "holobazaar_inventory_feed_signatures", "Signed feed requests by signing form "
            "and outcome", labels=["form", "outcome"])
        found = {("v2", "accepted"): 0, ("v1", "accepted"): 0}  # listed from the start
        for name, value in self.shared.items():
            parts = name.split(":")
            if len(parts) == 3 and parts[0] == "signatures":
                found[(parts[1], parts[2])] = int(value)
        for (form, outcome), value in sorted(found.items()):
            signatures.add_metric([form, outcome], value)
        yield signatures
        sweep = GaugeMetricFamily("holobazaar_reconcile_last_sweep_seconds",
                                  "Duration of the last full sweep")
        sweep.add_metric([], self.shared.get("last_sweep_seconds", 0.0))
        yield sweep
        # This node's publish guard (inventory/guard.py): what checking costs per publish.
        guard = self.reconciler.guard
        cost = SummaryMetricFamily("holobazaar_reconcile_guard_seconds",
                                   "Time the publish guard spent per display state (this node)")
        cost.add_metric([], guard.checks, guard.seconds)
        yield cost
        states = CounterMetricFamily("holobazaar_reconcile_guard_states",
                                     "Display states the publish guard checked or corrected "
                                     "(this node)", labels=["outcome"])
        states.add_metric(["checked"], guard.checks)
        states.add_metric(["corrected"], guard.corrected)
        yield states
        items = CounterMetricFamily("holobazaar_reconcile_guard_items",
                                    "Items the publish guard compared (this node)")
        items.add_metric([], guard.items_checked)
        yield items
        check = GaugeMetricFamily("holobazaar_reconcile_guard_check_seconds",
                                  "Recent publish guard checks (this node): one that passes "
                                  "(the change path's cost), one that corrects (composes)",
                                  labels=["outcome", "quantile"])
        for outcome, durations in (("passed", guard.recent),
                                   ("corrected", guard.recent_corrections)):
            for name, value in percentiles(list(durations)).items():
                if value is not None:
                    check.add_metric([outcome, name[1:]], value)
            if durations:
                check.add_metric([outcome, "100"], max(durations))
        yield check
