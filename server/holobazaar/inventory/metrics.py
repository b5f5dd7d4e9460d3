"""Prometheus figures of the reconciler: open mismatches by kind, time to correct, held
changes, unverified displays, feed lag and failures."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from holobazaar.inventory.reconciler import KINDS, Reconciler, _aware


class ReconcileCollector:
    def __init__(self, reconciler: Reconciler, poller) -> None:
        self.reconciler = reconciler
        self.poller = poller

    def collect(self):
        r = self.reconciler
        open_ = GaugeMetricFamily("holobazaar_reconcile_open_mismatches",
                                  "Open display mismatches", labels=["market", "kind"])
        markets = sorted(m.id for m in r.markets())
        for market in markets:
            counts = dict.fromkeys(KINDS, 0)
            for m, _, _, kind in r.open:
                if m == market:
                    counts[kind] += 1
            for kind, n in counts.items():
                open_.add_metric([market, kind], n)
        yield open_
        detected = CounterMetricFamily("holobazaar_reconcile_mismatches",
                                       "Mismatches detected", labels=["kind"])
        for kind, n in r.detected_by_kind.items():
            detected.add_metric([kind], n)
        yield detected
        ttc = GaugeMetricFamily("holobazaar_reconcile_time_to_correct_seconds",
                                "Time from detection to correction (recent)",
                                labels=["quantile"])
        for name, value in r.percentiles().items():
            if value is not None:
                ttc.add_metric([name[1:]], value)
        yield ttc
        held = GaugeMetricFamily("holobazaar_inventory_held_changes",
                                 "Changes held for a curator", labels=["market"])
        unverified = GaugeMetricFamily("holobazaar_displays_unverified",
                                       "Displays marked unverified (stale feed)",
                                       labels=["market"])
        lag = GaugeMetricFamily("holobazaar_inventory_feed_lag_seconds",
                                "Seconds since the last accepted feed batch", labels=["market"])
        now = datetime.now(UTC)
        for market in r.markets():
            held.add_metric([market.id], len(r.held.get(market.id, ())))
            unverified.add_metric([market.id], len(market.displays) if market.id in r.stale
                                  else 0)
            feed = r.feeds.get(market.id)
            last = _aware(feed.last_feed_at) if feed else None
            if last is not None:
                lag.add_metric([market.id], (now - last).total_seconds())
        yield held
        yield unverified
        yield lag
        counts = CounterMetricFamily("holobazaar_reconcile", "Reconciler counters",
                                     labels=["counter"])
        for key, value in sorted(r.counts.items()):
            counts.add_metric([key], value)
        counts.add_metric(["pull_polls"], self.poller.polls)
        yield counts
        sweep = GaugeMetricFamily("holobazaar_reconcile_last_sweep_seconds",
                                  "Duration of the last full sweep")
        sweep.add_metric([], r.last_sweep_seconds)
        yield sweep
