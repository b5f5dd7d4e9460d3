"""Prometheus figures of the phone AR files: files made (each a cache miss) and the time
the last one took, by kind (usdz, glb). Per node: each node makes its own files."""

from __future__ import annotations

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from holobazaar.quicklook.service import QuickLook


class QuickLookCollector:
    def __init__(self, quicklook: QuickLook) -> None:
        self.quicklook = quicklook

    def collect(self):
        made = CounterMetricFamily("holobazaar_quicklook_files_made",
                                   "Phone AR files generated (cache misses)", labels=["kind"])
        last = GaugeMetricFamily("holobazaar_quicklook_last_generation_seconds",
                                 "Time the last generated file took", labels=["kind"])
        for kind in ("usdz", "glb"):
            made.add_metric([kind], self.quicklook.generated[kind])
            if kind in self.quicklook.last_ms:
                last.add_metric([kind], self.quicklook.last_ms[kind] / 1000)
        yield made
        yield last
