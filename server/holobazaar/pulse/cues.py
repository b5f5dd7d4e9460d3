"""Show cues as pulse sees them: the dashboard aligns the crowd's mood with the cues
the show runners fired."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from holobazaar.pulse.service import CueMark, CueSource


def fired_cue_marks(shows: Any) -> CueSource:
    """A cue source over a ShowService: the cues its runners of a market have fired (and
    still hold) within a time range."""

    def marks(market: str, since: datetime, until: datetime) -> list[CueMark]:
        found = []
        for (runner_market, _), runner in sorted(shows.runners.items()):
            if runner_market != market:
                continue
            zones = (runner.show.zone,) if runner.show.zone else ()
            for cue in runner.fired:
                if "number" not in cue:
                    continue  # stop/panic events are not cues
                at = datetime.fromtimestamp(cue["start_time"] / 1000, UTC)
                if since <= at <= until:
                    label = f"{cue['number']} {cue.get('name') or ''}".strip()
                    found.append(CueMark(at, label, zones))
        return found

    return marks
