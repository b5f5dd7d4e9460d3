"""Sliding windows, k-anonymity, dwell buckets and the mood score, on the pure aggregator."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from holobazaar.pulse.aggregator import (
    DWELL_BUCKETS,
    MarketPulse,
    bucket_dwell,
    median_dwell,
    mood,
)
from holobazaar.pulse.sanitize import MAX_FEEDBACK, sanitize_feedback

T0 = datetime(2026, 11, 21, 12, 0, tzinfo=ZoneInfo("Europe/Amsterdam")).timestamp()


def devices(n: int, prefix: str = "d") -> list[str]:
    return [f"{prefix}{i:04d}" for i in range(n)]


def test_windows_slide_and_day_keeps_counting() -> None:
    pulse = MarketPulse("m", "Europe/Amsterdam")
    for i, device in enumerate(devices(6)):
        pulse.add(T0 + i, device, "stall-a", "zone-1", "love")
    view = pulse.view(T0 + 10, k=5)
    for window in ("1m", "15m", "day"):
        assert view[window]["displays"]["stall-a"]["counts"]["love"] == 6
        assert view[window]["displays"]["stall-a"]["devices"] == 6
        assert view[window]["zones"]["zone-1"]["reactions"] == 6
        assert view[window]["market"]["devices"] == 6
    # Two minutes later the 1-minute window is empty; 15 minutes and the day still count.
    view = pulse.view(T0 + 130, k=5)
    assert view["1m"]["displays"] == {} and view["1m"]["market"] is None
    assert view["15m"]["displays"]["stall-a"]["counts"]["love"] == 6
    # Past 15 minutes only the day remembers.
    view = pulse.view(T0 + 16 * 60, k=5)
    assert view["15m"]["market"] is None
    assert view["day"]["market"]["counts"]["love"] == 6


def test_window_edges_are_slot_exact() -> None:
    pulse = MarketPulse("m")
    for device in devices(5):
        pulse.add(T0, device, "a", "z", "wow")
    assert pulse.figures("display", "a", "1m", T0 + 59).counts[1] == 5
    assert pulse.figures("display", "a", "1m", T0 + 66).counts[1] == 0


def test_distinct_devices_not_reactions() -> None:
    pulse = MarketPulse("m")
    for i in range(20):  # one very keen device
        pulse.add(T0 + i, "keen", "a", "z", "love")
    for device in devices(3):
        pulse.add(T0 + 30, device, "a", "z", "love")
    figures = pulse.figures("display", "a", "15m", T0 + 31)
    assert figures.devices == 4 and figures.counts[0] == 23
    # 4 devices < k=5: the keen device cannot make a group visible on its own.
    assert pulse.view(T0 + 31, k=5)["15m"]["displays"] == {}
    assert pulse.view(T0 + 31, k=4)["15m"]["displays"]["a"]["devices"] == 4


def test_k_anonymity_hides_small_groups_per_scope() -> None:
    pulse = MarketPulse("m")
    for device in devices(5, "x"):
        pulse.add(T0, device, "big", "z1", "love")
    for device in devices(2, "y"):
        pulse.add(T0, device, "small", "z2", "hungry")
    view = pulse.view(T0 + 1, k=5)["15m"]
    assert set(view["displays"]) == {"big"}
    assert set(view["zones"]) == {"z1"}
    assert view["market"]["devices"] == 7  # the market as a whole is large enough
    assert view["market"]["counts"]["hungry"] == 2


def test_display_a_never_counts_for_display_b() -> None:
    pulse = MarketPulse("m")
    for device in devices(8):
        pulse.add(T0, device, "a", "z", "love")
    for device in devices(5, "b"):
        pulse.add(T0, device, "b", "z", "learn")
    view = pulse.view(T0 + 1, k=5)["day"]["displays"]
    assert view["a"]["counts"] == {"love": 8, "wow": 0, "hungry": 0, "learn": 0}
    assert view["b"]["counts"] == {"love": 0, "wow": 0, "hungry": 0, "learn": 5}


def test_day_rolls_over_at_local_midnight() -> None:
    tz = ZoneInfo("Europe/Amsterdam")
    before = datetime(2026, 11, 21, 23, 59, 30, tzinfo=tz).timestamp()
    pulse = MarketPulse("m", "Europe/Amsterdam")
    for device in devices(5):
        pulse.add(before, device, "a", "z", "love")
    assert pulse.view(before + 1, k=5)["day"]["market"]["counts"]["love"] == 5
    after = before + 45  # 00:00:15 the next day
    view = pulse.view(after, k=5)
    assert view["day"]["market"] is None
    assert view["1m"]["market"]["counts"]["love"] == 5  # the sliding window spans midnight


def test_memory_is_bounded_by_the_windows() -> None:
    pulse = MarketPulse("m")
    for second in range(0, 3600, 2):  # an hour of a new device every two seconds
        pulse.add(T0 + second, f"dev{second}", "a", "z", "love")
        if second % 60 == 0:
            pulse.prune(T0 + second)
            pulse.closed_minutes(T0 + second)
    pulse.prune(T0 + 3600)
    scope = pulse.scopes[("display", "a")]
    assert len(scope.slots) <= 900 // 5 + 2
    assert len(scope.seen["1m"]) <= 31 and len(scope.seen["15m"]) <= 451
    assert len(pulse.minutes) <= 3 * 2


def test_closed_minutes_are_taken_once() -> None:
    pulse = MarketPulse("m")
    for device in devices(3):
        pulse.add(T0 + 5, device, "a", "z", "love")
    pulse.add(T0 + 5, "d0000", "a", "z", "dwell", 60)
    assert pulse.closed_minutes(T0 + 30) == []  # the minute is still open
    rows = pulse.closed_minutes(T0 + 61)
    assert {(r.scope, r.scope_id) for r in rows} == {("market", "m"), ("zone", "z"),
                                                     ("display", "a")}
    display = next(r for r in rows if r.scope == "display")
    assert display.figures.devices == 3
    assert display.figures.as_state()["dwell_median"] == 60
    assert pulse.closed_minutes(T0 + 120) == []


@pytest.mark.parametrize(("reported", "bucket", "clamped"), [
    (0, 0, False), (5, 5, False), (30, 30, False), (300, 300, False),
    (47, 30, True), (4.9, 0, True), (301, 300, True), (1e9, 300, True),
])
def test_dwell_buckets_and_clamping(reported: float, bucket: int, clamped: bool) -> None:
    assert bucket_dwell(reported) == (bucket, clamped)


def test_median_dwell() -> None:
    hist = [0] * len(DWELL_BUCKETS)
    assert median_dwell(hist) is None
    hist[DWELL_BUCKETS.index(5)] = 1
    hist[DWELL_BUCKETS.index(30)] = 1
    hist[DWELL_BUCKETS.index(120)] = 1
    assert median_dwell(hist) == 30


def test_mood_score() -> None:
    assert mood({}, 0, 10) == 0
    assert mood({"love": 5}, 0, 0) == 0
    assert mood({"love": 10}, 0, 10) == 50  # one love per visitor
    assert mood({"learn": 10}, 0, 10) == 33  # weight 0.5: 5 / (5 + 10)
    assert mood({"love": 30}, 0, 10) == 75
    assert mood({"love": 10}, 10, 10) == 60  # long looks add warmth: 15 / 25
    assert mood({"love": 10_000}, 0, 1) == 100


def test_feedback_sanitized() -> None:
    text, flags = sanitize_feedback("Great \u202ebread!!!!!!!!!!!!!!! see http://spam.example/x  ")
    assert text == "Great bread!!! see [link removed]"
    assert flags == ["invisible characters removed", "links removed", "repetition shortened"]
    long, flags = sanitize_feedback("tomato " * 100)
    assert len(long) == MAX_FEEDBACK and long.endswith("…")
    assert flags == [f"cut to {MAX_FEEDBACK} characters"]
    assert sanitize_feedback("<b>plain</b> text") == ("<b>plain</b> text", [])


def test_a_late_event_from_another_node_counts_in_its_own_slot() -> None:
    pulse = MarketPulse("m")
    for device in devices(5):
        pulse.add(T0 + 30, device, "a", "z", "love")
    pulse.add(T0 + 21, "late", "a", "z", "wow")  # forwarded a moment later than the others
    assert [start for start, _ in pulse.scopes[("market", "m")].slots] == [T0 + 20, T0 + 30]
    # 41 s later the 1-minute window no longer reaches the late event's slot (T0+20..25).
    view = pulse.view(T0 + 86, k=5)["1m"]["market"]
    assert view["counts"] == {"love": 5, "wow": 0, "hungry": 0, "learn": 0}


def test_stored_minutes_count_into_the_day_with_a_lower_bound_of_devices() -> None:
    """A new aggregator adds the minutes older than the raw events it replays: counts add
    up; distinct devices are at least the largest minute's (the sets are gone)."""
    pulse = MarketPulse("m")
    counts = [3, 1, 0, 0] + [0] * len(DWELL_BUCKETS)
    pulse.add_history(T0 + 600, "display", "a", counts, 4)
    pulse.add_history(T0 + 600, "display", "a", counts, 6)
    for device in devices(2):
        pulse.add(T0 + 600, device, "a", "z", "love")
    day = pulse.view(T0 + 601, k=5)["day"]["displays"]["a"]
    assert day["counts"]["love"] == 8 and day["counts"]["wow"] == 2
    assert day["devices"] == 6
    assert pulse.view(T0 + 601, k=7)["day"]["displays"] == {}  # never over-counted
