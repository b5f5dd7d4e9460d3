"""Opening hours and dayparting as pure functions of the time (holobazaar.scenes.schedule),
including the Europe/Amsterdam DST transitions, and what `holobazaar validate` reports."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from holobazaar.cli import app
from holobazaar.content import load_content
from holobazaar.scenes import schedule
from holobazaar.scenes.compositor import compose_display
from holobazaar.scenes.schedule_format import ScheduleEntry
from timeofday.content import (
    DISPLAY,
    DISPLAY_FILE,
    HOURS,
    MARKET,
    MARKET_FILE,
    SCHEDULE,
    SHOW,
    schedule_content,
)

AMS = schedule.zone("Europe/Amsterdam")
SPRING, AUTUMN = date(2026, 3, 29), date(2026, 10, 25)  # clocks forward / back


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def entry(**fields) -> ScheduleEntry:
    return ScheduleEntry.model_validate(fields)


def test_local_times_across_the_dst_transitions():
    # 07:00 is 06:00Z in winter and 05:00Z in summer: the day of the change is summer.
    assert schedule.local_instant(date(2026, 3, 28), 7 * 3600, AMS) == utc("2026-03-28T06:00")
    assert schedule.local_instant(SPRING, 7 * 3600, AMS) == utc("2026-03-29T05:00")
    # 02:30 does not exist on the spring day: the window starts when the clocks jump.
    assert schedule.local_instant(SPRING, 2 * 3600 + 1800, AMS) == utc("2026-03-29T01:00")
    assert not schedule.local_exists(SPRING, 2 * 3600 + 1800, AMS)
    # 02:30 happens twice in autumn: the first one.
    assert schedule.local_instant(AUTUMN, 2 * 3600 + 1800, AMS) == utc("2026-10-25T00:30")
    assert schedule.local_instant(AUTUMN, 86_400, AMS) == utc("2026-10-25T23:00")


def test_a_window_edge_follows_local_time_across_dst():
    breakfast = [entry(variant="breakfast", **{"from": "07:00", "to": "11:00"})]
    edges = []
    after = utc("2026-03-27T12:00")
    for _ in range(6):
        after = schedule.next_edge(None, [breakfast], after, AMS)
        edges.append(after)
    assert edges == [utc("2026-03-28T06:00"), utc("2026-03-28T10:00"),
                     utc("2026-03-29T05:00"), utc("2026-03-29T09:00"),
                     utc("2026-03-30T05:00"), utc("2026-03-30T09:00")]
    assert schedule.variant_at(breakfast, utc("2026-03-29T05:00"), AMS, True) == "breakfast"
    assert schedule.variant_at(breakfast, utc("2026-03-29T04:59:59"), AMS, True) is None
    # Autumn: the day has 25 hours and 07:00 is 06:00Z again.
    assert schedule.next_edge(None, [breakfast], utc("2026-10-25T00:00"), AMS) \
        == utc("2026-10-25T06:00")


def test_priorities_dates_and_weekdays():
    entries = [entry(variant="weekday", days=["mon", "tue", "wed", "thu", "fri"]),
               entry(variant="xmas", dates={"from": "2026-12-20", "to": "2026-12-26"},
                     priority=5),
               entry(variant="default", dates={"from": "2026-12-25", "to": "2026-12-25"},
                     priority=9)]
    assert schedule.variant_at(entries, utc("2026-12-18T12:00"), AMS, True) == "weekday"
    assert schedule.variant_at(entries, utc("2026-12-19T12:00"), AMS, True) is None  # Sat
    assert schedule.variant_at(entries, utc("2026-12-22T12:00"), AMS, True) == "xmas"
    assert schedule.variant_at(entries, utc("2026-12-25T12:00"), AMS, True) is None
    # The end date is inclusive: local midnight after it is the edge.
    assert schedule.next_edge(None, [entries[1:2]], utc("2026-12-26T12:00"), AMS) \
        == utc("2026-12-26T23:00")


def test_opening_hours_exceptions_and_closed_days(tmp_path: Path):
    content = load_content(schedule_content(tmp_path / "c"))
    assert content.ok, content.report()
    market = content.markets[MARKET].market
    hours = market.hours
    now = schedule.hours_at(hours, AMS, utc("2026-12-24T13:40"))  # Thursday, Christmas Eve
    assert (now.open, now.closes_at) == (True, utc("2026-12-24T14:00"))
    assert now.template(utc("2026-12-24T13:40"), AMS)["closes_in"] == 20
    # Closed on the 25th (a Friday): opens on Saturday at 07:00.
    now = schedule.hours_at(hours, AMS, utc("2026-12-24T15:00"))
    assert (now.open, now.opens_at) == (False, utc("2026-12-26T06:00"))
    assert now.template(utc("2026-12-24T15:00"), AMS)["opens_at"] == "Sat 07:00"
    assert schedule.hours_at(None, AMS, utc("2026-12-25T03:00")).open  # no hours: open


def test_the_compositor_composes_the_variant_in_force(tmp_path: Path):
    content = load_content(schedule_content(tmp_path / "c"))
    market = content.markets[MARKET]
    display = market.displays[DISPLAY]

    def state(at: str) -> dict:
        found, errors = compose_display(market.market, display, market.seed_items(),
                                        content.asset_refs(), at=utc(at))
        assert not errors
        return found

    breakfast = state("2026-12-04T08:00")
    assert breakfast["schedule"] == {"variant": "breakfast"}
    assert breakfast["display"]["title"] == "Breakfast at Bakkerij De Korenbloem"
    assert breakfast["nodes"]["story"]["title"] == "Breakfast"
    evening = state("2026-12-04T19:40")  # Friday 20:40 local
    assert evening["nodes"]["stollen-note"] == {**evening["nodes"]["stollen-note"],
                                                "visible": True,
                                                "text": "Closes in 20 minutes"}
    closed = state("2026-12-07T10:00")  # Monday: closed all day
    assert closed["hours"] == {"open": False, "opens_at": "2026-12-08T08:00:00+01:00",
                               "closes_at": None}
    assert closed["nodes"]["story"]["body"] == "Back Tue 08:00."
    plain = state("2026-12-04T11:00")  # noon: no window, the display's own content
    assert plain["schedule"] == {"variant": None}
    assert plain["nodes"]["story"]["title"] == "A starter from 2009"
    # Without a time (as other domains compose it): the file's content, no new keys.
    bare, _ = compose_display(market.market, display, market.seed_items(),
                              content.asset_refs())
    assert "schedule" not in bare and "hours" not in bare


def _line(path: Path, needle: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


BAD = [
    # (market extra, display extra, needle for the line, expected message part)
    (HOURS.replace("tue: \"08:00-18:00\"", "tue: \"08:00-25:00\""), "", "tue:",
     "invalid time '25:00'"),
    (HOURS.replace("tue: \"08:00-18:00\"", "tue: \"18:00-08:00\""), "", "tue:",
     "ends before it starts"),
    (HOURS.replace("Christmas Eve}", "Christmas Eve}\n    - {date: 2027-03-28, hours: "
                   "\"02:30-12:00\"}"), "", "2027-03-28", "does not exist on 2027-03-28"),
    (HOURS, SCHEDULE.replace("priority: 10}", "priority: 10}\n    - {variant: evening, "
                             "days: [fri], from: \"20:00\", to: \"22:00\"}"),
     "to: \"22:00\"", "overlaps schedule[1] ('evening') at the same priority 0"),
    (HOURS, SCHEDULE.replace("priority: 10}", "priority: 10}\n    - {variant: evening, "
                             "days: [sat], dates: {from: 2026-12-21, to: 2026-12-25}}"),
     "2026-12-21", "never occurs"),
    (HOURS, SCHEDULE.replace("priority: 10}", "priority: 10}\n    - {variant: evening, "
                             "dates: {from: 2026-03-28, to: 2026-03-30}, from: \"02:15\", "
                             "to: \"02:45\", priority: 3}"),
     "02:15", "02:15: that local time does not exist on 2026-03-29"),
    (HOURS, SCHEDULE.replace("variant: evening, days", "variant: evning, days"), "evning",
     "unknown variant 'evning'"),
    (HOURS, SCHEDULE.replace("stollen-note: {", "stollen-nite: {"), "stollen-nite",
     "unknown node 'stollen-nite'"),
    (HOURS, SCHEDULE.replace("visible: true,", "visible: true, size: -1,"), "size: -1",
     "greater than 0"),
    (HOURS, SCHEDULE.replace("Back {{ market.opens_at }}", "Back {{ market.opens_on }}"),
     "opens_on", "cannot render"),
    ("", SCHEDULE, "market: closed", "the market has no opening hours"),
]


@pytest.mark.parametrize(("market_extra", "display_extra", "needle", "message"), BAD)
def test_validate_reports_schedule_errors_with_file_and_line(
        tmp_path: Path, market_extra: str, display_extra: str, needle: str, message: str):
    content = schedule_content(tmp_path / "c", market_extra, display_extra)
    result = CliRunner().invoke(app, ["validate", str(content)])
    assert result.exit_code != 0
    file = MARKET_FILE if needle in market_extra else DISPLAY_FILE
    expected = f"{file}:{_line(content / file, needle)}:"
    assert any(expected in line and message in line for line in result.output.splitlines()), \
        (expected, message, result.output)


def test_an_unknown_timezone_is_named_with_its_line(tmp_path: Path):
    content = schedule_content(tmp_path / "c")
    market = content / MARKET_FILE
    market.write_text(market.read_text().replace("Europe/Amsterdam", "Europe/Amsterdan"))
    result = CliRunner().invoke(app, ["validate", str(content)])
    assert result.exit_code != 0
    line = _line(market, "Europe/Amsterdan")
    assert f"{MARKET_FILE}:{line}: market.timezone: Value error, unknown timezone " \
           "'Europe/Amsterdan'" in result.output, result.output


def test_the_market_state_and_a_clock_step_do_not_change_the_edges():
    hours = load_hours()
    after = utc("2026-12-04T11:20")  # Friday 12:20, closing for lunch at 12:30
    edges = list(schedule.hours_edges(hours, after, AMS, countdown=True))
    assert edges == [utc("2026-12-04T11:30"), utc("2026-12-04T11:21")]
    assert list(schedule.hours_edges(hours, after, AMS, countdown=False)) == edges[:1]
    assert schedule.next_edge(hours, [], after - timedelta(hours=3), AMS) == edges[0]


def load_hours():
    import yaml

    from holobazaar.scenes.schedule_format import OpeningHours

    return OpeningHours.model_validate(yaml.safe_load(HOURS)["hours"])


@pytest.mark.parametrize(("old", "new", "message"), [
    ("{at: 2026-11-04T17:30}", "{at: 2027-03-28T02:30}",
     "2027-03-28 02:30 does not exist in Europe/Amsterdam"),
    ("{at: 2026-11-04T17:30}",
     "{time: \"10:00\", days: [sun], dates: {from: 2026-12-21, to: 2026-12-26}}",
     "this start never happens"),
    ("{at: 2026-11-04T17:30}", "{at: 2026-11-04T17:30, time: \"10:00\"}",
     "give either 'at' (once) or 'time'"),
])
def test_validate_reports_show_start_errors(tmp_path: Path, old: str, new: str,
                                            message: str):
    content = schedule_content(tmp_path / "c")
    show = content / f"scenes/{MARKET}/shows/{SHOW}.yaml"
    show.write_text(show.read_text().replace(old, new))
    result = CliRunner().invoke(app, ["validate", str(content)])
    assert result.exit_code != 0
    line = _line(show, new[:12])
    assert any(f"shows/{SHOW}.yaml:{line}:" in out and message in out
               for out in result.output.splitlines()), result.output
