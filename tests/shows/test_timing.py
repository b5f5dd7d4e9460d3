"""Cue timing semantics as pure functions: pre-wait, post-wait, auto-continue, auto-follow,
groups, `next` and loops, all in milliseconds from a GO instant."""

from __future__ import annotations

import pytest

from holobazaar.shows import timing
from holobazaar.shows.models import Show


def show(*cues: dict) -> Show:
    return Show.model_validate({"id": "t", "title": "T", "cues": list(cues)})


def starts(firings) -> dict[str, tuple[float, float]]:
    return {f.number: (f.start, f.end) for f in firings}


def test_pre_wait_delays_the_start_and_none_stops_the_sequence():
    s = show({"number": "1", "pre_wait": 2, "duration": 3}, {"number": "2"})
    firings, standby = timing.sequence(s, 0, 10_000)
    assert starts(firings) == {"1": (12_000, 15_000)}
    assert standby == 1  # cue 2 waits for the next GO


def test_auto_continue_fires_the_next_cue_post_wait_after_the_start():
    s = show({"number": "1", "pre_wait": 1, "duration": 10, "post_wait": 4,
              "continue": "auto-continue"},
             {"number": "2", "pre_wait": 0.5, "duration": 1},
             {"number": "3"})
    firings, standby = timing.sequence(s, 0, 0)
    # cue 1 starts at 1 s; cue 2 is triggered 4 s later and waits its own 0.5 s pre-wait.
    assert starts(firings) == {"1": (1000, 11_000), "2": (5500, 6500)}
    assert standby == 2


def test_auto_follow_fires_the_next_cue_when_the_duration_is_over():
    s = show({"number": "1", "duration": 7, "post_wait": 99, "continue": "auto-follow"},
             {"number": "2", "duration": 2, "continue": "auto-follow"},
             {"number": "3", "pre_wait": 1})
    firings, standby = timing.sequence(s, 0, 500)
    assert starts(firings) == {"1": (500, 7500), "2": (7500, 9500), "3": (10_500, 10_500)}
    assert standby is None  # the list is finished


def test_group_children_fire_with_their_group_each_after_its_pre_wait():
    s = show({"number": "1", "pre_wait": 1, "continue": "auto-follow", "group": [
        {"number": "1.1", "duration": 2},
        {"number": "1.2", "pre_wait": 3, "duration": 4},
    ]}, {"number": "2"})
    firings, _ = timing.sequence(s, 0, 0)
    assert starts(firings) == {"1": (1000, 8000), "1.1": (1000, 3000), "1.2": (4000, 8000),
                               "2": (8000, 8000)}
    assert [f.child for f in firings] == [False, True, True, False]
    # The group lasts until its last child ends, so auto-follow waits for 1.2.
    assert timing.cue_length_ms(s.cues[0]) == 7000


def test_next_redirects_the_continue_and_loops_are_found():
    s = show({"number": "1", "continue": "auto-continue", "next": "3"},
             {"number": "2"}, {"number": "3", "duration": 1})
    firings, standby = timing.sequence(s, 0, 0)
    assert [f.number for f in firings] == ["1", "3"]
    assert standby is None
    looping = show({"number": "1", "duration": 1, "continue": "auto-follow"},
                   {"number": "2", "duration": 1, "continue": "auto-follow", "next": "1"})
    assert timing.find_cycle(looping) == ["1", "2", "1"]
    with pytest.raises(timing.CycleError):
        timing.sequence(looping, 0, 0)
    # A manual loop (continue: none) is fine: a performer chooses to go round again.
    assert timing.find_cycle(show({"number": "1", "next": "1"})) is None


def test_total_length_counts_each_sequence_back_to_back():
    s = show({"number": "1", "duration": 5, "continue": "auto-follow"},
             {"number": "2", "duration": 3},
             {"number": "3", "pre_wait": 1, "duration": 2})
    assert timing.total_length_ms(s) == 11_000
