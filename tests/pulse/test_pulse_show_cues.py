"""The pulse dashboard's show mood curve gets its cue marks from the show runners."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from support.live import LiveServer

SHOW = "/api/v1/shows/greenhaven/harvest-collective"


def test_fired_cues_become_marks_on_the_market_timeline(live_server: LiveServer):
    pulse = live_server.app.state.services.pulse
    before = datetime.now(UTC) - timedelta(seconds=1)
    with live_server.client() as http:
        assert http.post(f"{SHOW}/go", headers=live_server.write_headers).status_code == 200
        deadline = time.monotonic() + 5
        marks = []
        while not marks and time.monotonic() < deadline:
            marks = pulse.cues("greenhaven", before, datetime.now(UTC) + timedelta(seconds=5))
            time.sleep(0.05)
        state = http.get(SHOW, headers=live_server.write_headers).json()
    assert marks, "the fired cue shows on the pulse timeline"
    first = marks[0]
    assert first.zones == ("orchard-row",)
    assert first.label.split()[0] == str(state["cues"][0]["number"])
    assert pulse.cues("elsewhere", before, datetime.now(UTC) + timedelta(seconds=5)) == []
    assert pulse.cues("greenhaven", before - timedelta(hours=2), before) == []
