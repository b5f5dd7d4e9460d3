"""The curator's pulse dashboard (server-rendered SVG) and the chart geometry."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from holobazaar.pulse.service import CueMark
from holobazaar.web.charts import line_chart

from .reactions import DISPLAY_A, MARKET, display_channel, reaction
from support.live import LiveServer
from support.streamclient import joined


def test_dashboard_for_curators_only_with_charts_and_top_displays(
        live_server: LiveServer) -> None:
    async def taps() -> None:
        client = await joined(live_server.ws_url, display_channel(DISPLAY_A))
        for kind in ("love", "love", "love", "wow", "learn"):
            await client.send(reaction(DISPLAY_A, kind))
        await client.quiet(0.3)
        await client.close()

    asyncio.run(taps())
    live_server.call(live_server.app.state.services.pulse.flush, True)
    with live_server.client() as http:
        anonymous = http.get(f"/curate/{MARKET}/pulse", follow_redirects=False)
        assert anonymous.status_code == 303
        assert anonymous.headers["location"] == f"/login?next=/curate/{MARKET}/pulse"
        page = http.get(f"/curate/{MARKET}/pulse", headers=live_server.write_headers)
        assert page.status_code == 200, page.text
        html = page.text
        # One stored minute so far: a dot per series (a line once there are two minutes).
        assert '<circle' in html and 'data-series="love"' in html and 'data-series="mood"' in html
        assert "Tuinderij Zonneveld: vegetables" in html
        assert "No show cue has fired today" in html
        assert "Today so far: 5 visitors, 5 reactions, mood" in " ".join(html.split())
        assert http.get("/curate/nowhere/pulse",
                        headers=live_server.write_headers).status_code in (403, 404)


def test_chart_breaks_lines_at_hidden_minutes() -> None:
    t0 = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
    minute = timedelta(minutes=1)
    points = [(t0, 5.0), (t0 + minute, 8.0), (t0 + 5 * minute, 2.0), (t0 + 6 * minute, 4.0),
              (t0 + 9 * minute, 1.0)]
    chart = line_chart({"love": points}, t0, t0 + 10 * minute, width=140, height=130)
    (line,) = chart.lines
    assert len(line.segments) == 2 and len(line.dots) == 1
    first = [tuple(map(float, p.split(","))) for p in line.segments[0].split()]
    assert first[0] == (36.0, 58.0)  # 5 of 10 at the left edge; plot area 100 x 100
    assert first[1] == (45.6, 28.0)
    assert [label for _, label in chart.y_ticks] == ["0", "5", "10"]
    assert not chart.empty
    assert line_chart({"mood": []}, t0, t0 + minute).empty


def test_show_mood_curve_aligned_with_cues(live_server: LiveServer) -> None:
    """The shows domain registers a cue source; the dashboard draws the show zones' mood
    per minute with a mark at each cue."""
    async def taps() -> None:
        client = await joined(live_server.ws_url, display_channel(DISPLAY_A))
        for _ in range(5):
            await client.send(reaction(DISPLAY_A, "wow"))
        await client.quiet(0.3)
        await client.close()

    asyncio.run(taps())
    pulse = live_server.app.state.services.pulse
    live_server.call(pulse.flush, True)
    fired = datetime.now(UTC) - timedelta(minutes=2)

    def cues(market, since, until):
        return [CueMark(fired, "Cue 1: the bees wake", ("orchard-row",))] \
            if market == MARKET and since <= fired < until else []

    pulse.cue_sources.append(cues)
    with live_server.client() as http:
        html = http.get(f"/curate/{MARKET}/pulse", headers=live_server.write_headers).text
    assert "No show cue has fired today" not in html
    assert '<title>Cue 1: the bees wake</title>' in html
    assert 'class="mark"' in html and 'data-series="orchard-row"' in html
