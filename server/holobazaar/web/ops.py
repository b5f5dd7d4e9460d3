"""Operator endpoints: health and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from starlette.responses import PlainTextResponse

router = APIRouter(tags=["operations"])


@router.get("/healthz")
def healthz(request: Request) -> dict:
    scenes = request.app.state.scenes
    return {
        "status": "ok",
        "markets": sorted(scenes.content.markets) if scenes.content else [],
        "channels": len(request.app.state.hub.channels),
        "content_problems": scenes.last_problems or None,
    }


class _StreamCollector:
    def __init__(self, app) -> None:
        self.app = app

    def collect(self):
        hub = self.app.state.hub
        connections = CounterMetricFamily("holobazaar_stream_events",
                                          "Stream connection events by kind", labels=["event"])
        for key, value in sorted(self.app.state.stream_metrics.items()):
            connections.add_metric([key], value)
        yield connections
        hub_stats = CounterMetricFamily("holobazaar_hub", "Hub counters", labels=["counter"])
        for key, value in sorted(hub.stats.items()):
            hub_stats.add_metric([key], value)
        yield hub_stats
        subscribers = GaugeMetricFamily("holobazaar_channel_subscribers",
                                        "Subscribers per channel kind", labels=["kind"])
        totals: dict[str, int] = {}
        for name, channel in hub.channels.items():
            parts = name.split("/")
            kind = parts[2] if len(parts) > 2 else "market"
            totals[kind] = totals.get(kind, 0) + len(channel.subscribers)
        for kind, total in sorted(totals.items()):
            subscribers.add_metric([kind], total)
        yield subscribers
        pulse = getattr(self.app.state, "pulse", None)
        if pulse is not None:
            counters = CounterMetricFamily("holobazaar_pulse", "Pulse reactions accepted, "
                                           "refused (by reason) and clamped", labels=["event"])
            for key, value in sorted(pulse.stats.items()):
                counters.add_metric([key], value)
            yield counters


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(request: Request) -> PlainTextResponse:
    registry = CollectorRegistry()
    registry.register(_StreamCollector(request.app))
    return PlainTextResponse(generate_latest(registry).decode(),
                             media_type="text/plain; version=0.0.4")
