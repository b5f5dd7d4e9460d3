"""Operator endpoints: health and Prometheus metrics."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, Response
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from starlette.responses import PlainTextResponse

from holobazaar.web.services import Services, services

router = APIRouter(tags=["operations"])


@router.get("/healthz")
def healthz(request: Request, response: Response) -> dict:
    running = services(request)
    scenes = running.scenes
    # A node that cannot read its broker serves stale displays: a load balancer should
    # send visitors elsewhere (503) until it can again.
    broker_ok = getattr(running.hub.broker, "healthy", True)
    if not broker_ok:
        response.status_code = 503
    return {
        "status": "ok" if broker_ok else "broker unreachable",
        "markets": sorted(scenes.content.markets) if scenes.content else [],
        "channels": len(running.hub.channels),
        "content_problems": scenes.last_problems or None,
        "node": running.cluster.node,
    }


class _StreamCollector:
    def __init__(self, running: Services) -> None:
        self.services = running
        self.spreads: dict[tuple[str, str], float] = {}

    async def prepare(self) -> None:
        """Figures kept outside this process (Redis with several nodes), read before
        collecting (collectors are synchronous)."""
        shows = self.services.shows
        for key, runner in sorted(shows.runners.items()):
            summary = await shows.sync_summary(runner)
            if summary and "spread_ms" in summary:
                self.spreads[key] = summary["spread_ms"]

    def collect(self):
        hub = self.services.hub
        connections = CounterMetricFamily("holobazaar_stream_events",
                                          "Stream connection events by kind", labels=["event"])
        for key, value in sorted(self.services.stream_metrics.items()):
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
        # A task count that keeps growing under steady load is a leak (bench/soak.py).
        yield GaugeMetricFamily("holobazaar_asyncio_tasks", "Tasks alive on this "
                                "process's event loop", value=len(asyncio.all_tasks()))
        yield from self._shows()
        yield from self._pulse()

    def _shows(self):
        shows = self.services.shows
        if shows is not None:
            spread = GaugeMetricFamily("holobazaar_show_sync_spread_ms", "Spread of the "
                                       "devices' reported execution of a show's last cue",
                                       labels=["market", "show"])
            for (market, show), value in sorted(self.spreads.items()):
                spread.add_metric([market, show], value)
            yield spread
        osc = self.services.osc
        if osc is not None:
            packets = CounterMetricFamily("holobazaar_osc", "OSC packets by outcome",
                                          labels=["outcome"])
            for key, value in sorted(osc.stats.items()):
                packets.add_metric([key], value)
            yield packets

    def _pulse(self):
        pulse = self.services.pulse
        if pulse is not None:
            counters = CounterMetricFamily("holobazaar_pulse", "Pulse reactions accepted, "
                                           "refused (by reason) and clamped", labels=["event"])
            for key, value in sorted(pulse.stats.items()):
                counters.add_metric([key], value)
            # Events this node could not forward (Redis unreachable, its buffer full).
            counters.add_metric(["forward_dropped"], pulse.transport.dropped)
            yield counters
            cpu = CounterMetricFamily("holobazaar_pulse_cpu_seconds", "CPU time of pulse's "
                                      "own work (accept, aggregate, publish, flush on the "
                                      "event loop; write in the thread pool)", labels=["part"])
            for key, seconds in sorted(pulse.cpu.items()):
                cpu.add_metric([key], seconds)
            yield cpu
            yield GaugeMetricFamily("holobazaar_pulse_aggregating", "1 on the node that "
                                    "aggregates pulse (holds the pulse-aggregator lease)",
                                    value=int(pulse.leading))


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(request: Request) -> PlainTextResponse:
    registry = CollectorRegistry()
    running = services(request)
    collectors = [_StreamCollector(running), *running.metric_collectors]
    for collector in collectors:
        prepare = getattr(collector, "prepare", None)
        if prepare is not None:
            await prepare()
        registry.register(collector)
    return PlainTextResponse(generate_latest(registry).decode(),
                             media_type="text/plain; version=0.0.4")
